"""Dataset at scale: create, reopen, query and one edit, at 1,000 and 1,000,000 samples.

    python bench/bench_dataset.py [--samples 1000000] [--boxes-per-sample 3]

One edit must cost about the same at 1M rows as at 1k: edits touch one SQLite row by primary
key and one in-memory cell, never rewrite a table. Edits are durable (SQLite
``synchronous=FULL``: a returned edit survives power loss); the same edits under ``NORMAL``
(survives a killed process only) are timed beside them for the cost. Prints a table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import hardex_nb as hx
from hardex_nb import ingest


def build(folder: Path, n_samples: int, boxes_per_sample: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    ds = hx.Dataset.create(folder, task="detection", labels=[f"l{i}" for i in range(20)])
    t0 = time.perf_counter()
    samples = pd.DataFrame(
        {
            "path": [f"/data/img_{i:07d}.jpg" for i in range(n_samples)],
            "name": [f"img_{i:07d}.jpg" for i in range(n_samples)],
            "width": rng.integers(200, 2000, n_samples),
            "height": rng.integers(200, 2000, n_samples),
            "status": rng.choice(["unlabeled", "to_confirm", "labeled"], n_samples),
            "hard": rng.integers(0, 2, n_samples),
            "hard_reasons": "",
            "added_at": time.time(),
            "source": "upload",
            "split": "train",
        }
    )
    n_boxes = n_samples * boxes_per_sample
    x0 = rng.uniform(0, 100, n_boxes)
    y0 = rng.uniform(0, 100, n_boxes)
    annotations = pd.DataFrame(
        {
            "sample_id": -(np.repeat(np.arange(n_samples), boxes_per_sample) + 1),
            "kind": "box",
            "label": rng.choice([f"l{i}" for i in range(20)], n_boxes),
            "x0": x0,
            "y0": y0,
            "x1": x0 + 50,
            "y1": y0 + 50,
            "origin": "human",
            "hard_type": "none",
        }
    )
    ingest.insert_rows(ds, samples, annotations)
    elapsed = time.perf_counter() - t0
    ds.close()
    return elapsed


def edit_times(ds: hx.Dataset, repeats: int = 200) -> dict[str, float]:
    ids = ds.sample_rows()["sample_id"].to_numpy()
    ann_ids = ds.annotation_rows()["ann_id"].to_numpy()
    rng = np.random.default_rng(1)
    out = {}
    for name, edit in {
        "set_status": lambda k: ds.set_status(int(ids[k % len(ids)]), "labeled"),
        "add_box": lambda k: ds.add_box(int(ids[k % len(ids)]), "l1", 1, 1, 20, 20),
        "update_annotation": lambda k: ds.update_annotation(int(ann_ids[k % len(ann_ids)]), x0=2),
    }.items():
        times = []
        for k in rng.integers(0, 10**9, repeats):
            t0 = time.perf_counter()
            edit(int(k))
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times) * 1e3
    return out


def measure(n_samples: int, boxes_per_sample: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ds"
        row = {"create_s": build(folder, n_samples, boxes_per_sample)}
        t0 = time.perf_counter()
        ds = hx.Dataset.open(folder)
        row["reopen_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        hits = ds.query(status="labeled", min_width=1000, hard=True)
        row["query_s"] = time.perf_counter() - t0
        row["query_hits"] = len(hits)
        row.update({f"{k}_ms": v for k, v in edit_times(ds).items()})  # FULL, the default
        ds._store.conn.execute("PRAGMA synchronous=NORMAL")
        row.update({f"{k}_ms_normal": v for k, v in edit_times(ds).items()})
        ds._store.conn.execute("PRAGMA synchronous=FULL")
        t0 = time.perf_counter()
        _ = ds.samples
        row["read_samples_s"] = time.perf_counter() - t0
        ds.close()
        row["db_mb"] = (folder / "hardex.sqlite").stat().st_size / 2**20
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--boxes-per-sample", type=int, default=3)
    args = ap.parse_args()
    rows = {}
    for n in (1_000, args.samples):
        rows[f"{n:,} samples / {n * args.boxes_per_sample:,} boxes"] = measure(
            n, args.boxes_per_sample
        )
    table = pd.DataFrame(rows)
    with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 120):
        print(table.to_string())
    small, large = rows.values()
    for key in ("set_status_ms", "add_box_ms", "update_annotation_ms"):
        print(
            f"{key}: {large[key] / small[key]:.2f}x at {args.samples:,} vs 1,000 rows; "
            f"durable (FULL) vs NORMAL: {small[key] / small[key + '_normal']:.2f}x at 1,000, "
            f"{large[key] / large[key + '_normal']:.2f}x at {args.samples:,}"
        )


if __name__ == "__main__":
    main()
