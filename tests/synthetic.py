"""Small generated data sets for training tests and notebooks-in-tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

import hardex_nb as hx

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def write_image(
    path: Path, width: int, height: int, *, seed: int = 0, fmt: str | None = None
) -> Path:
    """Write a random RGB image of ``width`` × ``height`` pixels."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def bars_dataset(folder: Path, n: int = 60, n_labeled: int = 40, seed: int = 0, size: int = 40):
    """Classification: a vertical ('v') or horizontal ('h') bright bar on noise."""
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True)
    truth = {}
    for i in range(n):
        c = i % 2
        a = np.full((size, size, 3), 30, np.uint8)
        lo, hi = size // 2 - 3, size // 2 + 3
        if c == 0:
            a[5 : size - 5, lo:hi] = 220
        else:
            a[lo:hi, 5 : size - 5] = 220
        a = np.clip(a + rng.integers(0, 40, a.shape), 0, 255).astype(np.uint8)
        name = f"{i:03d}.png"
        Image.fromarray(a).save(folder / "img" / name)
        truth[name] = "vh"[c]
    ds = hx.Dataset.create(folder / "ds", task="classification", labels=["v", "h"])
    ids = ds.add_images(folder / "img").added
    names = ds.samples["name"].tolist()
    for sid, name in zip(ids[:n_labeled], names[:n_labeled]):
        ds.set_label(sid, truth[name])
    return ds, ids, [truth[n] for n in names]


def boxes_dataset(folder: Path, n: int = 60, n_labeled: int = 45, seed: int = 0, size: int = 96):
    """Detection: red and blue rectangles planted on dark noise; returns the truth too."""
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True)
    truth = {}
    for i in range(n):
        a = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
        objs = []
        for _ in range(int(rng.integers(1, 3))):
            w, h = rng.integers(size // 6, size // 3, 2)
            x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            c = int(rng.integers(0, 2))
            a[y : y + h, x : x + w] = [230, 40, 40] if c == 0 else [40, 40, 230]
            objs.append((["red", "blue"][c], x, y, x + int(w), y + int(h)))
        name = f"{i:03d}.png"
        Image.fromarray(a).save(folder / "img" / name)
        truth[name] = objs
    ds = hx.Dataset.create(folder / "ds", task="detection", labels=["red", "blue"])
    ids = ds.add_images(folder / "img").added
    names = ds.samples["name"].tolist()
    for sid, name in zip(ids[:n_labeled], names[:n_labeled]):
        for obj in truth[name]:
            ds.add_box(sid, *obj)
    return ds, ids, [truth[n] for n in names]


def squares_dataset(folder: Path, n: int = 120, n_labeled: int = 60, seed: int = 0, size: int = 48):
    """Multilabel: any of a red, a green and a blue square on grey noise (none, one, two or
    all three); returns the dataset, its sample ids and each image's true label set."""
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True)
    names_of = ["red", "green", "blue"]
    truth = {}
    for i in range(n):
        a = np.full((size, size, 3), 30, np.uint8)
        has = rng.random(3) < 0.45
        for k in np.flatnonzero(has):
            x, y = rng.integers(0, size - size // 3, 2)
            a[y : y + size // 3, x : x + size // 3] = 0
            a[y : y + size // 3, x : x + size // 3, k] = 230
        a = np.clip(a + rng.normal(0, 10, a.shape), 0, 255).astype(np.uint8)
        name = f"{i:03d}.png"
        Image.fromarray(a).save(folder / "img" / name)
        truth[name] = [names_of[k] for k in np.flatnonzero(has)]
    ds = hx.Dataset.create(folder / "ds", task="multilabel", labels=names_of)
    ids = ds.add_images(folder / "img").added
    names = ds.samples["name"].tolist()
    for sid, name in zip(ids[:n_labeled], names[:n_labeled]):
        ds.set_labels(sid, truth[name])
    return ds, ids, [truth[n] for n in names]
