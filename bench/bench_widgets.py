"""Gallery cost by dataset size: bytes sent and time to the first page.

Builds datasets of 100, 10,000 and 100,000 samples (one small image file shared by all
rows) and opens a Gallery on each, counting what would cross the wire: the synced state
(JSON) and the binary thumbnail buffers of the page in view.

    python bench/bench_widgets.py
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

import hardex_nb as hx
from hardex_nb import ingest


def build(folder: Path, n: int, image: Path) -> hx.Dataset:
    ds = hx.Dataset.create(folder, task="classification", labels=["a", "b"])
    ingest.insert_rows(
        ds,
        pd.DataFrame(
            {
                "path": str(image),
                "name": [f"s{i:06d}.jpg" for i in range(n)],
                "width": 640,
                "height": 480,
                "status": "unlabeled",
                "hard": 0,
                "hard_reasons": "",
                "added_at": time.time(),
                "source": "upload",
                "split": "train",
            }
        ),
    )
    return ds


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "photo.jpg"
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(image, quality=90)
        for n in (100, 10_000, 100_000):
            ds = build(Path(tmp) / f"ds{n}", n, image)
            ds.close()
            t0 = time.perf_counter()
            ds = hx.Dataset.open(Path(tmp) / f"ds{n}")
            opened = time.perf_counter() - t0
            sent = []
            t0 = time.perf_counter()
            g = hx.Gallery.__new__(hx.Gallery)
            g.send = lambda msg, buffers=None, sent=sent: sent.append((msg, buffers or []))
            hx.Gallery.__init__(g, ds)
            first_page = time.perf_counter() - t0
            state = len(json.dumps(g.get_state(), default=str).encode())
            thumbs = sum(len(b) for _, bufs in sent for b in bufs)
            t0 = time.perf_counter()
            g.handle({"action": "page", "page": 1})
            next_page = time.perf_counter() - t0
            rows.append(
                {
                    "samples": f"{n:,}",
                    "open dataset s": opened,
                    "first page s": first_page,
                    "next page s": next_page,
                    "state bytes": state,
                    "thumbnail bytes": thumbs,
                    "thumbnails sent": sum(len(b) for _, b in sent[:1]),
                }
            )
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format="{:.3f}".format))


if __name__ == "__main__":
    main()
