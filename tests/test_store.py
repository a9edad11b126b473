"""The SQLite file under hostile conditions: damage, odd metadata, read-only folders, old
schemas."""

import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
from synthetic import write_image

import hardex_nb as hx
from hardex_nb import StoreError, ingest


def _dataset(folder: Path, n: int = 3) -> Path:
    ds = hx.Dataset.create(folder, task="detection", labels=["a"])
    ids = ds.add_images(
        [write_image(folder.parent / f"src{i}.png", 60, 40, seed=i) for i in range(n)]
    ).added
    for sid in ids:
        ds.add_box(sid, "a", 1, 1, 20, 20)
    ds.close()
    return folder


def test_a_damaged_table_page_is_a_store_error_naming_the_file(tmp_path):
    folder = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"]).path
    ds = hx.Dataset.open(folder)
    ingest.insert_rows(
        ds,
        samples=__import__("pandas").DataFrame(
            {
                "path": [f"p{i}.png" for i in range(3000)],
                "name": "p.png",
                "width": 60,
                "height": 40,
                "status": "unlabeled",
                "hard": 0,
                "hard_reasons": "",
                "added_at": 0.0,
                "source": "upload",
                "split": "train",
            }
        ),
    )
    ds.close()
    db = folder / "hardex.sqlite"
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name='samples'").fetchone()
    page = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    data = bytearray(db.read_bytes())
    data[(root - 1) * page : (root - 1) * page + 100] = b"\xff" * 100  # the table's root page
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=rf"{db}.*(malformed|corrupt).*backup"):
        hx.Dataset.open(folder)


def test_a_schema_version_that_is_not_a_number_is_a_store_error(tmp_path):
    folder = _dataset(tmp_path / "d")
    con = sqlite3.connect(folder / "hardex.sqlite")
    con.execute("UPDATE meta SET value='1.5' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=r"schema_version holds '1\.5'"):
        hx.Dataset.open(folder)


def test_schema_2_moves_its_embedding_files_into_the_store(tmp_path):
    folder = _dataset(tmp_path / "d")
    con = sqlite3.connect(folder / "hardex.sqlite")
    for name in (
        "samples_label_insert",
        "samples_label_update",
        "annotations_label_insert",
        "annotations_label_update",
        "labels_delete",
    ):
        con.execute(f"DROP TRIGGER {name}")
    con.execute("DROP TABLE embeddings")
    con.execute("DROP TABLE results")
    con.execute("ALTER TABLE annotations DROP COLUMN truncated")
    con.execute("ALTER TABLE annotations DROP COLUMN occluded")
    con.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    con.commit()
    con.close()
    (folder / "embeddings").mkdir()
    vectors = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    np.savez(folder / "embeddings" / "V1.npz", sample_ids=np.array([1, 2, 3]), vectors=vectors)
    ds = hx.Dataset.open(folder)
    ids, got = ds.embeddings("V1")
    assert ids.tolist() == [1, 2, 3] and np.array_equal(got, vectors)
    assert not (folder / "embeddings" / "V1.npz").exists()
    assert ds.similar_to(1, k=2, status=None)["sample_id"].tolist()[0] in (2, 3)
    assert not ds.annotations[["truncated", "occluded"]].any().any()  # columns added
    assert ds.results.empty and list(ds.results.columns[:3]) == ["key", "method", "version"]
    with pytest.raises(hx.ValidationError, match="not in the label set"), ds._write() as cur:
        cur.execute("UPDATE annotations SET label='gone'")  # the triggers are in place


def test_a_folder_that_cannot_be_written_opens_read_only(tmp_path):
    """Reading needs no write access; every edit says why it is refused. Run as another
    user where this process is root (root may write anywhere)."""
    base = Path(tempfile.mkdtemp(prefix="hardex-ro-"))
    try:
        folder = _dataset(base / "d")
        for p in (base, folder, folder / "media", *folder.rglob("*")):
            p.chmod(0o755 if p.is_dir() else 0o644)
        script = textwrap.dedent(f"""
            import os, sys, warnings
            import hardex_nb as hx                      # Python itself may lie under /root
            if os.geteuid() == 0:
                os.setgid(65534); os.setuid(65534)      # nobody
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                ds = hx.Dataset.open({str(folder)!r})
            print(ds.read_only, len(ds.samples), len(ds.annotations))
            print([str(w.message) for w in seen])
            try:
                ds.add_box(int(ds.samples.sample_id[0]), "a", 1, 1, 5, 5)
            except hx.StoreError as exc:
                print("refused:", exc)
        """)
        if os.geteuid() != 0:
            for p in (folder, folder / "media"):
                p.chmod(0o555)
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd="/"
        )
        lines = out.stdout.splitlines()
        assert lines and lines[0] == "True 3 3", out.stderr
        assert "opened read-only" in lines[1]
        assert lines[2].startswith("refused:") and "read-only" in lines[2]
        assert hx.Dataset.open(folder, read_only=True).read_only
    finally:
        for p in base.rglob("*"):
            if p.is_dir():
                p.chmod(0o755)
        import shutil

        shutil.rmtree(base, ignore_errors=True)


def test_insert_update_delete_name_only_known_tables_and_columns(tmp_path):
    from hardex_nb import store as db

    (tmp_path / "d").mkdir()
    s = db.Store(tmp_path / "d", create=True)
    row = dict(
        path="p",
        width=8,
        height=8,
        status="unlabeled",
        label=None,
        hard=0,
        hard_score=None,
        hard_reasons="",
        added_at=0.0,
        source="upload",
        split="train",
        parent_id=None,
        tile_row=None,
        tile_col=None,
        sha256=None,
    )
    with s.transaction() as cur:
        db.insert(
            cur,
            "samples",
            db.SAMPLE_COLUMNS,
            [
                tuple({**row, "sample_id": i, "name": f"{i}.png"}[c] for c in db.SAMPLE_COLUMNS)
                for i in (1, 2)
            ],
        )
        assert db.update(cur, "samples", ["name"], "sample_id", [("two.png", 2), ("x", 9)]) == 1
        assert db.delete(cur, "samples", "sample_id", [1]) == 1
        for bad in (
            lambda: db.insert(cur, "meta", ["key"], []),
            lambda: db.update(cur, "samples", ["name; DROP TABLE samples"], "sample_id", []),
            lambda: db.delete(cur, "runs", "1=1 OR version", [1]),
        ):
            with pytest.raises(ValueError, match="unknown table or columns"):
                bad()
    assert s.conn.execute("SELECT sample_id, name FROM samples").fetchall() == [(2, "two.png")]
    s.close()
