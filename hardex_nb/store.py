"""SQLite persistence of a dataset: schema, transactions, migrations.

A dataset is a folder holding ``hardex.sqlite`` (WAL mode) and ``media/``. Every write goes
through `Store.transaction`, a ``BEGIN IMMEDIATE`` transaction committed before it
returns, so writes from several processes serialize and a killed process loses nothing it
had returned for. `hardex_nb.dataset.Dataset` is the only caller that writes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from .annotation_rules import ANNOTATION_FIELDS
from .errors import StoreError

DB_NAME = "hardex.sqlite"
SCHEMA_VERSION = 6  # 2: annotations.difficult; 3: label triggers, embeddings table;
# 4: annotations.truncated / occluded (VOC); 5: results (provenance of job results);
# 6: samples.sha256 (the same file added twice is found)

SAMPLE_COLUMNS = [
    "sample_id",
    "path",
    "name",
    "width",
    "height",
    "status",
    "label",
    "hard",
    "hard_score",
    "hard_reasons",
    "added_at",
    "source",
    "split",
    "parent_id",
    "tile_row",
    "tile_col",
    "sha256",
]
ANNOTATION_COLUMNS = ["ann_id", *ANNOTATION_FIELDS]  # the row annotation_rules builds
RUN_COLUMNS = [
    "version",
    "number",
    "task",
    "model",
    "status",
    "started",
    "finished",
    "duration",
    "avg_detection_rate",
    "labeled_images",
    "total_images",
    "label_count",
    "params",
    "weights_path",
    "message",
]
PREDICTION_COLUMNS = ["version", "sample_id", "label", "x0", "y0", "x1", "y1", "score"]
RESULT_COLUMNS = ["key", "method", "version", "params", "fields", "created", "payload"]
FLAG_COLUMNS = ("difficult", "truncated", "occluded")  # VOC's object flags on annotations
# the tables insert / update / delete may name, with their columns
TABLES = {
    "samples": SAMPLE_COLUMNS,
    "annotations": ANNOTATION_COLUMNS,
    "runs": RUN_COLUMNS,
    "predictions": PREDICTION_COLUMNS,
    "results": RESULT_COLUMNS,
}


def _checked(table: str, columns) -> list[str]:
    """``columns`` of a known ``table``: names in SQL come from this list, never from data."""
    known = TABLES.get(table)
    columns = list(columns)
    if known is None or not set(columns) <= set(known):
        raise ValueError(f"unknown table or columns: {table} {columns}")
    return columns


def insert(cur: sqlite3.Cursor, table: str, columns, rows) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``, inside the caller's
    transaction."""
    columns = _checked(table, columns)
    cur.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows
    )


def update(cur: sqlite3.Cursor, table: str, columns, key: str, rows) -> int:
    """Set ``columns`` of the rows whose ``key`` matches: each of ``rows`` is the new values
    in ``columns`` order followed by the key. Returns the number of rows changed."""
    columns = _checked(table, [*columns, key])[:-1]
    cur.executemany(
        f"UPDATE {table} SET {', '.join(f'{c}=?' for c in columns)} WHERE {key}=?", rows
    )
    return cur.rowcount


def delete(cur: sqlite3.Cursor, table: str, key: str, keys) -> int:
    """Delete the rows of ``table`` whose ``key`` is one of ``keys``; returns how many."""
    _checked(table, [key])
    cur.executemany(f"DELETE FROM {table} WHERE {key}=?", [(k,) for k in keys])
    return cur.rowcount


def sql_rows(frame: pd.DataFrame) -> Iterable[tuple]:
    """Rows as tuples of plain Python values (NumPy scalars unwrapped, NaN/NA as None):
    sqlite3 would store a NumPy integer as a BLOB."""
    obj = frame.astype(object).where(frame.notna(), None)
    for row in obj.itertuples(index=False, name=None):
        yield tuple(v.item() if isinstance(v, np.generic) else v for v in row)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labels (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    sample_id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'unlabeled',
    label TEXT,
    hard INTEGER NOT NULL DEFAULT 0,
    hard_score REAL,
    hard_reasons TEXT NOT NULL DEFAULT '',
    added_at REAL NOT NULL,
    source TEXT NOT NULL DEFAULT 'upload',
    split TEXT NOT NULL DEFAULT 'train',
    parent_id INTEGER,
    tile_row INTEGER,
    tile_col INTEGER,
    sha256 TEXT
);
CREATE INDEX IF NOT EXISTS samples_sha256 ON samples(sha256);
CREATE TABLE IF NOT EXISTS annotations (
    ann_id INTEGER PRIMARY KEY,
    sample_id INTEGER NOT NULL REFERENCES samples(sample_id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    label TEXT,
    x0 REAL, y0 REAL, x1 REAL, y1 REAL,
    points TEXT,
    angle REAL,
    text TEXT,
    score REAL,
    origin TEXT NOT NULL DEFAULT 'human',
    hard_type TEXT NOT NULL DEFAULT 'none',
    difficult INTEGER NOT NULL DEFAULT 0,
    truncated INTEGER NOT NULL DEFAULT 0,
    occluded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS annotations_sample ON annotations(sample_id);
CREATE TABLE IF NOT EXISTS runs (
    version TEXT PRIMARY KEY,
    number INTEGER NOT NULL,
    task TEXT,
    model TEXT,
    status TEXT NOT NULL,
    started REAL,
    finished REAL,
    duration REAL,
    avg_detection_rate REAL,
    labeled_images INTEGER,
    total_images INTEGER,
    label_count INTEGER,
    params TEXT,
    weights_path TEXT,
    message TEXT
);
CREATE TABLE IF NOT EXISTS predictions (
    version TEXT NOT NULL,
    sample_id INTEGER NOT NULL REFERENCES samples(sample_id) ON DELETE CASCADE,
    label TEXT,
    x0 REAL, y0 REAL, x1 REAL, y1 REAL,
    score REAL
);
CREATE INDEX IF NOT EXISTS predictions_version ON predictions(version);
CREATE TABLE IF NOT EXISTS embeddings (
    version TEXT NOT NULL,
    sample_id INTEGER NOT NULL REFERENCES samples(sample_id) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    PRIMARY KEY (version, sample_id)
);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    method TEXT NOT NULL,
    version TEXT,
    params TEXT NOT NULL,
    fields TEXT NOT NULL,
    created REAL NOT NULL,
    payload TEXT
);
"""

# No sample or annotation may name a label that is not in the label set, and a label that is
# still named cannot be deleted: a write racing delete_label fails instead of dangling.
LABEL_MISSING = "hardex: label not in the label set"
LABEL_IN_USE = "hardex: label still in use"
_TRIGGERS = [
    f"""CREATE TRIGGER IF NOT EXISTS {table}_label_{event.split()[0].lower()}
    BEFORE {event} ON {table}
    WHEN NEW.label IS NOT NULL AND NOT EXISTS (SELECT 1 FROM labels WHERE name = NEW.label)
    BEGIN SELECT RAISE(ABORT, '{LABEL_MISSING}'); END"""
    for table in ("samples", "annotations")
    for event in ("INSERT", "UPDATE OF label")
] + [
    f"""CREATE TRIGGER IF NOT EXISTS labels_delete BEFORE DELETE ON labels
    WHEN EXISTS (SELECT 1 FROM samples WHERE label = OLD.name)
      OR EXISTS (SELECT 1 FROM annotations WHERE label = OLD.name)
    BEGIN SELECT RAISE(ABORT, '{LABEL_IN_USE}'); END"""
]


class Store:
    """One SQLite connection to a dataset folder's database.

    Parameters
    ----------
    folder : Path
        The dataset folder; the database is ``folder / "hardex.sqlite"``.
    create : bool
        Create the schema (the folder must exist); otherwise the database must exist.
    read_only : bool
        Open for reading only (a folder the process cannot write to); every write then
        raises `StoreError`.
    """

    def __init__(self, folder: Path, *, create: bool = False, read_only: bool = False):
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        self.read_only = read_only
        if not create and not self.path.exists():
            raise StoreError(
                f"{self.folder} is not a hardex_nb dataset: {DB_NAME} is missing. "
                "Create one with hardex_nb.Dataset.create(path, task=..., labels=[...])."
            )
        try:
            self.conn = self._connect()
            if create:
                with self.transaction() as cur:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            cur.execute(statement)
                    for statement in _TRIGGERS:
                        cur.execute(statement)
                    cur.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path}: cannot open the dataset database ({exc}). "
                "If the file was copied while in use, copy its -wal file too; "
                "if it is damaged, restore it from a backup."
            ) from exc
        self._data_version = self.data_version()

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            # immutable when no -wal file is left: a folder nobody can write to cannot
            # hold the -shm file a read-only WAL reader would otherwise need
            wal = self.path.with_name(DB_NAME + "-wal")
            uri = f"file:{quote(str(self.path))}?mode=ro" + ("" if wal.exists() else "&immutable=1")
            conn = sqlite3.connect(
                uri, uri=True, timeout=60.0, isolation_level=None, check_same_thread=False
            )
        else:
            conn = sqlite3.connect(
                self.path, timeout=60.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a returned edit survives power loss, not only a killed process
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=60000")
        return conn

    def _damaged(self, exc: sqlite3.DatabaseError) -> StoreError:
        """A StoreError naming the database file for an SQLite failure (not a constraint)."""
        if self.read_only and "readonly" in str(exc):
            return StoreError(
                f"{self.folder} was opened read-only (the folder is not writable); "
                "copy the dataset folder somewhere writable to change it."
            )
        return StoreError(
            f"{self.path}: {exc}. Check the disk (space, permissions); if the "
            "database is damaged, run PRAGMA integrity_check on it or restore a "
            "backup."
        )

    # -- transactions -------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any exception.

        SQLite failures other than constraint violations (a damaged page, a full disk, a
        read-only folder) are raised as `StoreError` naming the database file."""
        if self.read_only:
            raise StoreError(
                f"{self.folder} was opened read-only (the folder is not writable); "
                "copy the dataset folder somewhere writable to change it."
            )
        cur = self.conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                if self.conn.in_transaction:
                    cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc
        finally:
            cur.close()

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: changes when another connection commits."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def changed_elsewhere(self) -> bool:
        """Whether another connection committed since the last call (or since opening)."""
        version = self.data_version()
        changed = version != self._data_version
        self._data_version = version
        return changed

    def next_id(self, cur: sqlite3.Cursor, key: str, count: int = 1) -> int:
        """Reserve ``count`` ids from the counter ``key`` inside a transaction; returns the
        first."""
        row = cur.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        first = int(row[0]) if row else 1
        cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(first + count)))
        return first

    # -- meta and reads -----------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def read_table(self, table: str, columns: list[str], order_by: str) -> pd.DataFrame:
        """Whole table as a DataFrame with ``columns`` in that order."""
        cols = ", ".join(columns)
        try:
            rows = self.conn.execute(f"SELECT {cols} FROM {table} ORDER BY {order_by}").fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc
        return pd.DataFrame.from_records(rows, columns=columns)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    # -- migrations ---------------------------------------------------------------------
    def _migrate(self) -> None:
        text = self.get_meta("schema_version", "0") or "0"
        try:
            found = int(text)
        except ValueError:
            raise StoreError(
                f"{self.path}: table meta, key schema_version holds {text!r}, not a "
                "whole number: the file was not written by hardex_nb or was "
                "edited by hand. Restore it from a backup."
            ) from None
        if found < SCHEMA_VERSION and self.read_only:
            raise StoreError(
                f"{self.path} needs an upgrade (schema {found} to {SCHEMA_VERSION}) "
                "but was opened read-only; open it once from a writable folder."
            )
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer hardex_nb (schema {found}, this one "
                f"reads up to {SCHEMA_VERSION}). Upgrade hardex_nb to open it."
            )
        if found < 1:
            raise StoreError(f"{self.path} has no schema_version: it is not a hardex_nb dataset.")
        if found < 2:  # VOC difficult, kept on the annotation and honoured by evaluation
            with self.transaction() as cur:
                cur.execute(
                    "ALTER TABLE annotations ADD COLUMN difficult INTEGER NOT NULL DEFAULT 0"
                )
                cur.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
        if found < 3:  # label triggers; embeddings inside the store (atomic with their job)
            with self.transaction() as cur:
                for statement in _SCHEMA.split(";"):
                    if "embeddings" in statement:
                        cur.execute(statement)
                for statement in _TRIGGERS:
                    cur.execute(statement)
                self._import_embedding_files(cur)
                cur.execute("UPDATE meta SET value='3' WHERE key='schema_version'")
            for path in (self.folder / "embeddings").glob("V*.npz"):
                path.unlink(missing_ok=True)
        if found < 4:  # VOC's truncated and occluded, kept like difficult
            with self.transaction() as cur:
                have = {row[1] for row in cur.execute("PRAGMA table_info(annotations)")}
                for flag in ("truncated", "occluded"):
                    if flag not in have:
                        cur.execute(
                            f"ALTER TABLE annotations ADD COLUMN {flag} INTEGER NOT NULL DEFAULT 0"
                        )
                cur.execute("UPDATE meta SET value='4' WHERE key='schema_version'")
        if found < 5:  # results: what each job wrote, under a key
            with self.transaction() as cur:
                for statement in _SCHEMA.split(";"):
                    if "TABLE IF NOT EXISTS results" in statement:
                        cur.execute(statement)
                cur.execute("UPDATE meta SET value='5' WHERE key='schema_version'")
        if found < 6:  # content hashes; older samples get theirs when add_images needs them
            with self.transaction() as cur:
                have = {row[1] for row in cur.execute("PRAGMA table_info(samples)")}
                if "sha256" not in have:
                    cur.execute("ALTER TABLE samples ADD COLUMN sha256 TEXT")
                cur.execute("CREATE INDEX IF NOT EXISTS samples_sha256 ON samples(sha256)")
                cur.execute("UPDATE meta SET value='6' WHERE key='schema_version'")

    def _import_embedding_files(self, cur: sqlite3.Cursor) -> None:
        """Schema 2 kept embeddings in ``embeddings/<version>.npz``; move them into the table."""
        import numpy as np

        folder = self.folder / "embeddings"
        for path in sorted(folder.glob("V*.npz")) if folder.is_dir() else []:
            with np.load(path) as f:
                ids, vectors = f["sample_ids"], f["vectors"].astype(np.float32)
            cur.executemany(
                "INSERT OR REPLACE INTO embeddings SELECT ?, ?, ? WHERE EXISTS "
                "(SELECT 1 FROM samples WHERE sample_id = ?)",
                [(path.stem, int(i), v.tobytes(), int(i)) for i, v in zip(ids, vectors)],
            )
