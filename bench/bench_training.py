"""Training and inference throughput: hardex_nb's engine vs a bare hand-written torch loop.

Same model (resnet18 classifier, from scratch), same images, same optimizer (AdamW), same
batch size, in the same run; CUDA gets mixed precision and channels_last in both. The bare
loop reads a ready float tensor; ours goes through the dataset rows (decoded once, cached,
augmented per sample). Images/s are measured after a warm-up epoch. Prints a table with
the ratio ours / bare (goal ≥ 0.9).

    python bench/bench_training.py [--images 2048] [--size 64] [--epochs 3] [--batch 128]

``--photos 10000 100000``: real files instead, the generated 640×480 JPEG photos of
``bench_autolabel.py`` (``bench/.cache``; a count above the files there lists them again:
the disk of the test machines holds 10,000, and the page cache serves repeats to both sides
alike). One training epoch and one prediction pass, each in its own process, hardex_nb
streaming (``memory_budget=0``) against a plain ``DataLoader(num_workers=cores)`` +
torchvision loop on the same model; images/s and peak RSS (main process, largest worker).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from torch import nn

from hardex_nb.training import engine
from hardex_nb.training.data import ImageRows, Normalize
from hardex_nb.training.models import build_model


def synthetic_images(n: int, size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    return list(images), labels


def model_for(size: int, device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    net = build_model("resnet18", task="classification", num_classes=10, image_size=size)
    return nn.Sequential(Normalize(), net).to(device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def ours(images, labels, size, epochs, batch, device):
    data = ImageRows(images, size, task="classification", targets=labels.tolist())
    model = model_for(size, device)
    stamps = []
    opts = engine.FitOptions(
        task="classification", epochs=epochs + 1, batch_size=batch, lr=1e-3, device=device
    )
    engine.fit(
        model,
        data,
        opts,
        on_epoch=lambda e, loss: (sync(device), stamps.append(time.perf_counter())),
    )
    train_ips = len(data) // batch * batch * epochs / (stamps[-1] - stamps[0])
    engine.predict(model, data, task="classification", device=device, batch_size=batch)
    sync(device)
    t0 = time.perf_counter()
    engine.predict(model, data, task="classification", device=device, batch_size=batch)
    sync(device)
    return train_ips, len(data) / (time.perf_counter() - t0)


def bare(images, labels, size, epochs, batch, device):
    x_all = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)
    x_all = (
        nn.functional.interpolate(x_all, size=(size, size), mode="bilinear")
        if x_all.shape[-1] != size
        else x_all
    )
    y_all = torch.as_tensor(labels)
    cuda = device.type == "cuda"
    if cuda:
        x_all = x_all.pin_memory()
    model = model_for(size, device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    dtype = engine._amp_dtype(device)  # the same mixed precision as ours
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    amp = (
        (lambda: torch.autocast("cuda", dtype=dtype))
        if cuda
        else (lambda: torch.autocast("cpu", enabled=False))
    )
    model.train()
    stamps = []
    n = len(x_all) // batch * batch
    for epoch in range(epochs + 1):
        perm = torch.randperm(len(x_all))
        for s in range(0, n, batch):
            idx = perm[s : s + batch]
            x = x_all[idx].to(device, non_blocking=True)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            y = y_all[idx].to(device, non_blocking=True)
            with amp():
                loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        sync(device)
        stamps.append(time.perf_counter())
    train_ips = n * epochs / (stamps[-1] - stamps[0])
    model.eval()

    def infer():
        with torch.inference_mode():
            for s in range(0, len(x_all), batch):
                x = x_all[s : s + batch].to(device, non_blocking=True)
                if cuda:
                    x = x.contiguous(memory_format=torch.channels_last)
                with amp():
                    torch.softmax(model(x).float(), 1).cpu()
        sync(device)

    infer()
    t0 = time.perf_counter()
    infer()
    return train_ips, len(x_all) / (time.perf_counter() - t0)


def _photos_ours(paths, size, batch, out):
    from bench_autolabel import _peak_mb

    from hardex_nb.training.data import ImageRows

    cpu = torch.device("cpu")
    rows = ImageRows(
        paths,
        size,
        task="classification",
        memory_budget=0,
        targets=[i % 10 for i in range(len(paths))],
    )
    model = model_for(size, cpu)
    t0 = time.perf_counter()
    engine.fit(
        model,
        rows,
        engine.FitOptions(task="classification", epochs=1, batch_size=batch, lr=1e-3, device=cpu),
    )
    train = len(paths) // batch * batch / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    engine.predict(model, rows, task="classification", device=cpu, batch_size=batch)
    out.put((train, len(paths) / (time.perf_counter() - t0), *_peak_mb()))


def _photos_plain(paths, size, batch, out):
    import os

    from bench_autolabel import _peak_mb
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision.transforms import v2

    class Photos(Dataset):
        tf = v2.Compose(
            [
                v2.PILToTensor(),
                v2.Resize((size, size), antialias=True),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32, scale=True),
            ]
        )

        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            with Image.open(paths[i]) as img:
                return self.tf(img.convert("RGB")), i % 10

    model = model_for(size, torch.device("cpu"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    workers = os.cpu_count() or 1
    model.train()
    t0 = time.perf_counter()
    for x, y in DataLoader(
        Photos(), batch_size=batch, shuffle=True, drop_last=True, num_workers=workers
    ):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    train = len(paths) // batch * batch / (time.perf_counter() - t0)
    model.eval()
    t0 = time.perf_counter()
    with torch.inference_mode():
        for x, _ in DataLoader(Photos(), batch_size=batch, num_workers=workers):
            torch.softmax(model(x), 1)
    out.put((train, len(paths) / (time.perf_counter() - t0), *_peak_mb()))


def photos(counts: list[int], size: int, batch: int) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_autolabel import make_photos, run_isolated

    files = make_photos(min(max(counts), 10_000))
    print(
        f"resnet18 at {size} px, batch {batch}, one epoch + one prediction pass over "
        f"{len(files)} distinct 640×480 JPEGs (listed again up to each count)"
    )
    for n in counts:
        paths = [files[i % len(files)] for i in range(n)]
        rows = {
            "hardex_nb streaming": run_isolated(_photos_ours, paths, size, batch),
            "plain DataLoader + torchvision": run_isolated(_photos_plain, paths, size, batch),
        }
        table = pd.DataFrame(
            rows, index=["train img/s", "predict img/s", "main RSS MB", "worker RSS MB"]
        ).T
        for col in ("train img/s", "predict img/s"):
            table[f"{col} ratio"] = table[col] / table.loc["plain DataLoader + torchvision", col]
        print(f"\n{n} images")
        print(table.to_string(float_format="{:.2f}".format))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, nargs="+", help="JPEG photo counts (see the notes)")
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    if args.photos:
        photos(args.photos, args.size, args.batch)
        return
    device = engine.resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    images, labels = synthetic_images(args.images, args.size)
    name = (
        torch.cuda.get_device_name()
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    print(
        f"resnet18, {args.images} images {args.size}×{args.size}, batch {args.batch}, "
        f"{args.epochs} timed epochs, on {name}"
    )
    o = ours(images, labels, args.size, args.epochs, args.batch, device)
    b = bare(images, labels, args.size, args.epochs, args.batch, device)
    table = pd.DataFrame(
        {"hardex_nb img/s": o, "bare loop img/s": b}, index=["training", "inference"]
    )
    table["ratio"] = table["hardex_nb img/s"] / table["bare loop img/s"]
    print(table.to_string(float_format="{:.2f}".format))


if __name__ == "__main__":
    main()
