"""The auto-label data path on realistic photos: decodes per image, images/s, peak memory.

Generates N 640×480 JPEG photos once (``bench/.cache/``), then runs each configuration in a
fresh process and prints a table:

- the decode floor: Pillow decoding every file in one loop (full decode; draft decode);
- hardex_nb's one-pass views (predictions, mirrored predictions, features) over
  ``ImageRows``, streaming (budget of one byte: nothing kept) and in memory;
- the reference: a plain ``DataLoader(num_workers=cores)`` over a torchvision-style dataset
  (full decode, ``transforms.v2.Resize``) doing the same three computations.

Same model (resnet18 classifier from scratch, 64 px input), same images, same batch size.
"Decodes/img" counts calls of the decoding function in every process (workers included).
Peak RSS is given for the main process and for its largest child (a DataLoader worker);
run at several sizes to see whether memory grows with the number of images.

    python bench/bench_autolabel.py [--images 2000 10000] [--size 64] [--batch 64]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

CACHE = Path(__file__).resolve().parent / ".cache"


def make_photos(n: int) -> list[Path]:
    """``n`` 640×480 JPEGs with photo-like smooth structure, generated once."""
    from PIL import Image

    folder = CACHE / "photos_640x480"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:06d}.jpg" for i in range(n)]
    rng = np.random.default_rng(0)
    for i, p in enumerate(paths):
        if p.exists():
            continue
        small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((640, 480), Image.BICUBIC)
        noise = rng.integers(-12, 12, (480, 640, 3))
        Image.fromarray(np.clip(np.asarray(img) + noise, 0, 255).astype(np.uint8)).save(
            p, quality=90
        )
    return paths


def _peak_mb() -> tuple[float, float]:
    """Peak RSS of this process and of its largest child (a DataLoader worker), in MB. Pages
    a forked worker shares with its parent count in both."""
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return me / 1024, kids / 1024


def _floor(paths, size, draft, out):
    from PIL import Image

    t0 = time.perf_counter()
    for p in paths:
        with Image.open(p) as img:
            if draft:
                img.draft("RGB", (size, size))
            img.convert("RGB").load()
    out.put((len(paths) / (time.perf_counter() - t0), 1.0, *_peak_mb()))


def _model(size):
    import torch
    from torch import nn

    from hardex_nb.training.data import Normalize
    from hardex_nb.training.models import build_model

    torch.manual_seed(0)
    return nn.Sequential(
        Normalize(), build_model("resnet18", task="classification", num_classes=10, image_size=size)
    ).eval()


def _ours(paths, size, batch, budget, counter, out):
    import torch

    from hardex_nb.training import data, engine

    real = data.load_resized

    def counting(path, s, **options):
        with counter.get_lock():
            counter.value += 1
        return real(path, s, **options)

    data.load_resized = counting  # inherited by the forked DataLoader workers
    model = _model(size)
    rows = data.ImageRows(paths, size, task="classification", memory_budget=budget)
    t0 = time.perf_counter()
    engine.predict_views(
        model,
        rows,
        task="classification",
        device=torch.device("cpu"),
        batch_size=batch,
        plain=True,
        flip=True,
        features=True,
    )
    out.put((len(paths) / (time.perf_counter() - t0), counter.value / len(paths), *_peak_mb()))


def _reference(paths, size, batch, counter, out):
    import torch
    from PIL import Image
    from torch import nn
    from torch.utils.data import DataLoader, Dataset
    from torchvision.transforms import v2

    class Photos(Dataset):
        def __init__(self):
            self.tf = v2.Compose(
                [
                    v2.PILToTensor(),
                    v2.Resize((size, size), antialias=True),
                    v2.ToDtype(torch.float32, scale=True),
                ]
            )

        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            with counter.get_lock():
                counter.value += 1
            with Image.open(paths[i]) as img:
                return self.tf(img.convert("RGB"))

    model = _model(size)
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    feats = []
    hook = last.register_forward_hook(lambda m, i, o: feats.append(i[0].detach()))
    loader = DataLoader(Photos(), batch_size=batch, num_workers=os.cpu_count() or 1)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for x in loader:
            torch.softmax(model(x), 1)
            hook.remove()
            torch.softmax(model(x.flip(-1)), 1)
            hook = last.register_forward_hook(lambda m, i, o: feats.append(i[0].detach()))
    hook.remove()
    out.put((len(paths) / (time.perf_counter() - t0), counter.value / len(paths), *_peak_mb()))


def run_isolated(target, *args):
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, out))
    proc.start()
    result = out.get()
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, nargs="+", default=[2_000, 10_000])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    t0 = time.perf_counter()
    every = make_photos(max(args.images))
    print(
        f"{len(every)} JPEG photos 640×480 ready in {time.perf_counter() - t0:.0f} s; "
        f"resnet18 at {args.size} px, batch {args.batch}, {os.cpu_count()} cores"
    )
    for n in args.images:
        print(f"\n{n} images")
        _table(every[:n], args)


def _table(paths, args) -> None:
    ctx = mp.get_context("fork")
    rows = {
        "Pillow full decode loop (floor)": run_isolated(_floor, paths, args.size, False),
        "Pillow draft decode loop (floor)": run_isolated(_floor, paths, args.size, True),
        "hardex_nb one pass, streaming": run_isolated(
            _ours, paths, args.size, args.batch, 1, ctx.Value("l", 0)
        ),
        "hardex_nb one pass, in memory": run_isolated(
            _ours, paths, args.size, args.batch, None, ctx.Value("l", 0)
        ),
        "plain DataLoader + torchvision": run_isolated(
            _reference, paths, args.size, args.batch, ctx.Value("l", 0)
        ),
    }
    table = pd.DataFrame(rows, index=["images/s", "decodes/img", "main RSS MB", "worker RSS MB"]).T
    ref = table.loc["plain DataLoader + torchvision", "images/s"]
    table["vs plain DataLoader"] = table["images/s"] / ref
    print(table.to_string(float_format="{:.2f}".format))


if __name__ == "__main__":
    main()
