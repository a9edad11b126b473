"""Training and inference loops for classifiers and detectors.

On CUDA: mixed precision (float16 autocast with a gradient scaler), channels_last for
classifiers, pinned host memory with non-blocking copies, and ``torch.inference_mode`` for
inference. A non-finite loss stops training with :class:`Diverged`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .data import ImageRows, collate


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then MPS, then CPU."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class FitOptions:
    task: str
    epochs: int
    batch_size: int
    lr: float
    device: torch.device
    seed: int = 0
    weight_decay: float = 1e-4

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _to_device(xs: list[Tensor], targets, opts: FitOptions):
    nb = opts.cuda
    if opts.task == "classification":
        x = torch.stack(xs)
        if nb:
            x = x.pin_memory().to(opts.device, non_blocking=True).contiguous(
                memory_format=torch.channels_last)
        else:
            x = x.to(opts.device)
        y = torch.as_tensor(targets, dtype=torch.int64).to(opts.device, non_blocking=nb)
        return x, y
    xs = [x.to(opts.device, non_blocking=nb) for x in xs]
    targets = [{k: v.to(opts.device, non_blocking=nb) for k, v in t.items()} for t in targets]
    return xs, targets


def loss_of(model: nn.Module, x, y, task: str, weights: Tensor | None = None) -> Tensor:
    if task == "classification":
        losses = nn.functional.cross_entropy(model(x), y, reduction="none")
        if weights is not None:
            return (losses * weights).sum() / weights.sum().clamp(min=1e-6)
        return losses.mean()
    return sum(model(x, y).values())


def make_optimizer(model: nn.Module, opts: FitOptions, steps: int):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=opts.lr,
                                                    total_steps=max(steps, 1), pct_start=0.15)
    return optimizer, scheduler


def fit(model: nn.Module, data: ImageRows, opts: FitOptions, *,
        on_step: Callable[[int, float], None] | None = None,
        on_epoch: Callable[[int, float], None] | None = None,
        extra_batches: Callable[[int], list] | None = None) -> list[float]:
    """Train ``model`` on ``data``; returns the mean loss of each epoch.

    ``extra_batches(epoch)`` may return more (x_list, targets) batches for that epoch
    (pseudo-labeled images in semi-supervised mode).
    """
    gen = torch.Generator().manual_seed(opts.seed)
    loader = torch.utils.data.DataLoader(data, batch_size=opts.batch_size, shuffle=True,
                                         collate_fn=collate, generator=gen, num_workers=0,
                                         drop_last=opts.task == "classification" and
                                         len(data) > opts.batch_size)
    steps = opts.epochs * (len(loader) + (2 * len(loader) if extra_batches else 0))
    optimizer, scheduler = make_optimizer(model, opts, steps)
    scaler = torch.amp.GradScaler("cuda", enabled=opts.cuda)
    if opts.cuda and opts.task == "classification":
        model.to(memory_format=torch.channels_last)
    model.train()
    history = []
    step = 0
    for epoch in range(opts.epochs):
        batches = [(xs, ts) for xs, ts, _ in loader]
        if extra_batches is not None:
            batches += extra_batches(epoch)
        total, count = 0.0, 0
        for xs, ts in batches:
            if opts.task == "classification" and len(xs) < 2:
                continue  # batch norm cannot train on a single image
            x, y = _to_device(xs, ts, opts)
            with _autocast(opts.device):
                loss = loss_of(model, x, y, opts.task)
            if not torch.isfinite(loss):
                raise Diverged(f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            scaler.step(optimizer)
            scaler.update()
            if step < steps:
                scheduler.step()
            step += 1
            total += loss.item() * len(xs)
            count += len(xs)
            if on_step is not None:
                on_step(step, loss.item())
        history.append(total / max(count, 1))
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    model.eval()
    return history


@torch.inference_mode()
def predict(model: nn.Module, data: ImageRows, *, task: str, device: torch.device,
            batch_size: int = 32, flip: bool = False) -> list:
    """Classification: ``(N, K)`` probabilities. Detection: per image a dict of ``boxes
    (K, 4)`` in the image's own pixels, ``labels (K,)`` 0-based and ``scores (K,)``.
    ``flip=True`` predicts on the mirrored images (boxes mapped back)."""
    model.eval()
    opts = FitOptions(task=task, epochs=0, batch_size=batch_size, lr=0, device=device)
    out: list = []
    for start in range(0, len(data), batch_size):
        idx = list(range(start, min(start + batch_size, len(data))))
        xs = [data.pixels(i)[0].float().div_(255) for i in idx]
        if flip:
            xs = [x.flip(-1) for x in xs]
        if task == "classification":
            x = torch.stack(xs)
            x = x.to(device, non_blocking=opts.cuda)
            if opts.cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device):
                logits = model(x)
            out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
            continue
        with _autocast(device):
            results = model([x.to(device, non_blocking=opts.cuda) for x in xs])
        for i, r in zip(idx, results):
            w, h = data.pixels(i)[1]
            boxes = r["boxes"].float().cpu().numpy().astype("float64")
            if flip:
                boxes[:, [0, 2]] = data.size - boxes[:, [2, 0]]
            boxes *= np.array([w / data.size, h / data.size] * 2)
            out.append({"boxes": boxes, "labels": r["labels"].cpu().numpy() - 1,
                        "scores": r["scores"].float().cpu().numpy().astype("float64")})
    if task == "classification":
        return np.concatenate(out) if out else np.zeros((0, 0))
    return out


@torch.inference_mode()
def embed(model: nn.Module, data: ImageRows, *, task: str, device: torch.device,
          batch_size: int = 32) -> np.ndarray:
    """``(N, D)`` features: the input of a classifier's last linear layer, or the detector
    backbone's deepest feature map averaged over space."""
    model.eval()
    feats: list[np.ndarray] = []
    if task == "classification":
        last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        grabbed: list[Tensor] = []
        handle = last.register_forward_hook(lambda m, i, o: grabbed.append(i[0].detach()))
        try:
            for start in range(0, len(data), batch_size):
                x = torch.stack([data.pixels(i)[0].float().div_(255)
                                 for i in range(start, min(start + batch_size, len(data)))])
                model(x.to(device))
                feats.append(grabbed.pop().float().flatten(1).cpu().numpy())
        finally:
            handle.remove()
    else:
        for start in range(0, len(data), batch_size):
            xs = [data.pixels(i)[0].float().div_(255).to(device)
                  for i in range(start, min(start + batch_size, len(data)))]
            images, _ = model.transform(xs)
            maps = model.backbone(images.tensors)
            deepest = list(maps.values())[-1] if isinstance(maps, dict) else maps
            feats.append(deepest.float().mean(dim=(2, 3)).cpu().numpy())
    return np.concatenate(feats) if feats else np.zeros((0, 0))


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)

