"""SQLite persistence of a dataset: schema, transactions, migrations.

A dataset is a folder holding ``hardex.sqlite`` (WAL mode) and ``media/``. Every write goes
through :meth:`Store.transaction`, a ``BEGIN IMMEDIATE`` transaction committed before it
returns, so writes from several processes serialize and a killed process loses nothing it
had returned for. :class:`hardex_nb.dataset.Dataset` is the only caller that writes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from .errors import StoreError

DB_NAME = "hardex.sqlite"
SCHEMA_VERSION = 2   # 2: annotations.difficult

SAMPLE_COLUMNS = [
    "sample_id", "path", "name", "width", "height", "status", "label", "hard", "hard_score",
    "hard_reasons", "added_at", "source", "split", "parent_id", "tile_row", "tile_col",
]
ANNOTATION_COLUMNS = [
    "ann_id", "sample_id", "kind", "label", "x0", "y0", "x1", "y1", "points", "angle", "text",
    "score", "origin", "hard_type", "difficult",
]
RUN_COLUMNS = [
    "version", "number", "task", "model", "status", "started", "finished", "duration",
    "avg_detection_rate", "labeled_images", "total_images", "label_count", "params",
    "weights_path", "message",
]
PREDICTION_COLUMNS = ["version", "sample_id", "label", "x0", "y0", "x1", "y1", "score"]

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
    tile_col INTEGER
);
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
    difficult INTEGER NOT NULL DEFAULT 0
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
"""


class Store:
    """One SQLite connection to a dataset folder's database.

    Parameters
    ----------
    folder : Path
        The dataset folder; the database is ``folder / "hardex.sqlite"``.
    create : bool
        Create the schema (the folder must exist); otherwise the database must exist.
    """

    def __init__(self, folder: Path, *, create: bool = False):
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        if not create and not self.path.exists():
            raise StoreError(
                f"{self.folder} is not a hardex_nb dataset: {DB_NAME} is missing. "
                "Create one with hardex_nb.Dataset.create(path, task=..., labels=[...])."
            )
        try:
            self.conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None,
                                        check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a returned edit survives power loss, not only a killed process
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA busy_timeout=60000")
            if create:
                with self.transaction() as cur:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            cur.execute(statement)
                    cur.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                (str(SCHEMA_VERSION),))
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open the dataset database ({exc}). "
                             "If the file was copied while in use, copy its -wal file too.") from exc
        self._data_version = self.data_version()

    # -- transactions -------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any exception."""
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")
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
        """Reserve ``count`` ids from the counter ``key`` inside a transaction; returns the first."""
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
        cur = self.conn.execute(f"SELECT {cols} FROM {table} ORDER BY {order_by}")
        rows = cur.fetchall()
        return pd.DataFrame.from_records(rows, columns=columns)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    # -- migrations ---------------------------------------------------------------------
    def _migrate(self) -> None:
        found = int(self.get_meta("schema_version", "0") or 0)
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer hardex_nb (schema {found}, this one "
                f"reads up to {SCHEMA_VERSION}). Upgrade hardex_nb to open it."
            )
        if found < 1:
            raise StoreError(f"{self.path} has no schema_version: it is not a hardex_nb dataset.")
        if found < 2:   # VOC difficult, kept on the annotation and honoured by evaluation
            with self.transaction() as cur:
                cur.execute("ALTER TABLE annotations ADD COLUMN difficult INTEGER NOT NULL "
                            "DEFAULT 0")
                cur.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
