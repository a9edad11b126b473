"""Training and inference loops for classifiers and detectors.

On CUDA: mixed precision (bfloat16 autocast, or float16 with a gradient scaler on GPUs
without bfloat16), channels_last for
classifiers, pinned host memory with non-blocking copies, and ``torch.inference_mode`` for
inference. A non-finite loss stops training with `Diverged`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..annotation_rules import WHOLE_IMAGE
from .data import ImageRows, augment_batch


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


def world() -> tuple[int, int]:
    """``(rank, world size)`` of this process in a ``torchrun`` launch; ``(0, 1)`` alone."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def join_launch() -> tuple[int, int]:
    """Join the process group ``torchrun`` set up in the environment (``WORLD_SIZE`` > 1):
    NCCL when each process has a GPU, gloo otherwise. Returns `world`."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and torch.distributed.is_available() and not torch.distributed.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return world()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA (this process's GPU under ``torchrun``), then MPS, then CPU."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        _, size = world()
        return (
            torch.device("cuda", torch.cuda.current_device()) if size > 1 else torch.device("cuda")
        )
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
    repeats: Sequence[int] | None = None  # times each row is seen per epoch (default 1)
    augment: str | Callable = "weak"  # data.augmentation mode, or a transforms.v2 transform
    steps_per_epoch: int = 0  # set by fit: optimizer steps per epoch, per process
    # extra batches per epoch at most (extra_batches of fit), for the learning-rate schedule
    extra_per_epoch: int = 0
    # set from another thread to stop: fit raises KeyboardInterrupt before its next step
    cancel: threading.Event | None = None

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


def _amp_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 where the GPU has it (no loss scaling needed), else float16."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _autocast(device: torch.device):
    dtype = _amp_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def _targets_to(targets: list, opts: FitOptions):
    nb = opts.cuda
    if opts.task == "classification":
        return torch.as_tensor(targets, dtype=torch.int64).to(opts.device, non_blocking=nb)
    if opts.task == "multilabel":  # one 0 / 1 row per image
        rows = torch.stack([torch.as_tensor(t, dtype=torch.float32) for t in targets])
        return rows.to(opts.device, non_blocking=nb)
    return [{k: v.to(opts.device, non_blocking=nb) for k, v in t.items()} for t in targets]


def loss_of(model: nn.Module, x, y, task: str) -> Tensor:
    if task == "classification":
        return nn.functional.cross_entropy(model(x), y)
    if task == "multilabel":  # one yes / no question per label
        return nn.functional.binary_cross_entropy_with_logits(model(x), y)
    return sum(model(list(x), y).values())


def make_optimizer(model: nn.Module, opts: FitOptions, steps: int):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=opts.lr, total_steps=max(steps, 1), pct_start=0.15
    )
    return optimizer, scheduler


@dataclass
class Consistency:
    """FixMatch (Sohn et al., NeurIPS 2020) on unlabeled images, for classifiers.

    Every step also takes ``ratio`` unlabeled images per labeled one. Each is seen twice in
    the same forward pass as the labeled batch: weakly augmented (the flip), whose
    prediction, when at least ``threshold`` sure, becomes the class the strongly augmented
    view (RandAugment and a cut-out) is trained to give, with weight ``weight``. An epoch
    lasts until every unlabeled image was seen once (the labeled batches cycle), so the
    whole pool shapes the model each epoch (at most ``limit`` of them an epoch, when
    given). ``kept`` gets, per epoch, how many unlabeled images were sure enough to count.
    """

    rows: ImageRows
    ratio: int = 3
    threshold: float = 0.95
    weight: float = 1.0
    limit: int | None = None
    kept: list[int] = field(default_factory=list)

    def steps(self, batch_size: int) -> int:
        """Steps of an epoch: enough to show every unlabeled image (up to ``limit``) once."""
        shown = len(self.rows) if self.limit is None else min(len(self.rows), self.limit)
        return -(-shown // max(self.ratio * batch_size, 1))


@dataclass
class Batch:
    """Rows ``idx`` of ``rows`` with their (resized) ``targets`` and augmentation mode."""

    rows: ImageRows
    idx: list[int]
    targets: list
    augment: str | Callable = "weak"


def epoch_batches(
    rows: ImageRows,
    batch_size: int,
    gen: torch.Generator,
    *,
    drop_last: bool,
    augment: str | Callable = "weak",
    repeats: Sequence[int] | None = None,
) -> list[Batch]:
    """One epoch's shuffled batches; row ``i`` appears ``repeats[i]`` times (default once)."""
    if repeats is None:
        order = torch.randperm(len(rows), generator=gen).tolist()
    else:
        pool = torch.repeat_interleave(
            torch.arange(len(rows)), torch.as_tensor(list(repeats), dtype=torch.long)
        )
        order = pool[torch.randperm(len(pool), generator=gen)].tolist()
    stop = (
        len(order) - len(order) % batch_size
        if drop_last and len(order) > batch_size
        else len(order)
    )
    return [
        Batch(
            rows,
            order[s : s + batch_size],
            [rows.scaled_target(i) for i in order[s : s + batch_size]],
            augment,
        )
        for s in range(0, stop, batch_size)
    ]


def interleave(first: list, second: list) -> list:
    """Both lists in one, spread evenly, each in its own order (pseudo-labeled batches
    between the labeled ones, never a long run of either)."""
    if not first or not second:
        return first + second
    n = len(first) + len(second)
    keys = [(k + 0.5) / len(first) for k in range(len(first))]
    keys += [(k + 0.5) / len(second) for k in range(len(second))]
    order = sorted(range(n), key=lambda i: (keys[i], i >= len(first)))
    both = first + second
    return [both[i] for i in order]


def _streamed(batches: list[Batch], device: torch.device):
    """``(batch, images)`` in order; consecutive batches of one ImageRows are read together
    (decoded ahead by its DataLoader when it streams)."""
    start = 0
    while start < len(batches):
        rows, stop = batches[start].rows, start
        while stop < len(batches) and batches[stop].rows is rows:
            stop += 1
        group = batches[start:stop]
        for b, (_, x) in zip(group, rows.batches([b.idx for b in group], device)):
            yield b, x
        start = stop


def fit(
    model: nn.Module,
    data: ImageRows,
    opts: FitOptions,
    *,
    on_epoch: Callable[[int, float], None] | None = None,
    extra_batches: Callable[[int], list[Batch]] | None = None,
    consistency: Consistency | None = None,
) -> list[float]:
    """Train ``model`` on ``data``; returns the mean loss of each epoch.

    ``extra_batches(epoch)`` may return more batches for that epoch (pseudo-labeled images
    in semi-supervised mode). A non-finite loss raises `Diverged`: checked every
    step on the CPU, and at the end of each epoch on CUDA (where the gradient scaler skips
    non-finite steps meanwhile), to keep the GPU free of per-step synchronization.

    Under ``torchrun`` (a process group of N processes, see `join_launch`) the model is
    wrapped in ``DistributedDataParallel``: every process draws the same shuffled batches
    and trains on every N-th one (the same number of steps on each, so a remainder of fewer
    than N batches is left out of that epoch); gradients are averaged, so one step sees N
    batches. The returned losses are the mean over the processes.
    """
    rank, size = world()
    net = model
    if size > 1:
        net = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[opts.device.index] if opts.cuda else None,
            find_unused_parameters=opts.task == "detection",
        )
    gen = torch.Generator().manual_seed(opts.seed)
    data.prepare(opts.device)
    drop_last = opts.task in WHOLE_IMAGE
    n = len(data) if opts.repeats is None else int(sum(opts.repeats))
    bs = opts.batch_size
    per_epoch = n // bs if drop_last and n > bs else -(-n // bs)
    cons = consistency if opts.task == "classification" and consistency else None
    if cons is not None:
        cons.rows.prepare(opts.device)
        per_epoch = max(per_epoch, cons.steps(bs))
    per_epoch = max(1, per_epoch // size)
    opts.steps_per_epoch = per_epoch
    # extra batches come in the second half of the epochs (pseudo-labels of a trained model)
    extra = max(1, opts.extra_per_epoch // size) if extra_batches and opts.extra_per_epoch else 0
    steps = opts.epochs * per_epoch + (opts.epochs - opts.epochs // 2) * extra
    optimizer, scheduler = make_optimizer(model, opts, steps)
    scaler = torch.amp.GradScaler("cuda", enabled=_amp_dtype(opts.device) == torch.float16)
    if opts.cuda and opts.task in WHOLE_IMAGE:
        model.to(memory_format=torch.channels_last)
    model.train()
    history = []
    step = 0
    for epoch in range(opts.epochs):
        batches = epoch_batches(
            data,
            opts.batch_size,
            gen,
            drop_last=drop_last,
            repeats=opts.repeats,
            augment=opts.augment,
        )
        while cons is not None and len(batches) < per_epoch * size:  # labeled ones cycle
            batches += epoch_batches(
                data, bs, gen, drop_last=drop_last, repeats=opts.repeats, augment=opts.augment
            )
        if cons is not None:
            batches = batches[: per_epoch * size]
            unlabeled = torch.randperm(len(cons.rows), generator=gen).tolist()
            sure = torch.zeros((), device=opts.device)
        if extra_batches is not None:
            batches = interleave(batches, extra_batches(epoch))
        if size > 1:  # every process the same number of steps, on its own share
            mine = batches[rank::size][: max(1, len(batches) // size)]
            batches = mine or batches[rank % len(batches) :][:1]
        total = torch.zeros((), device=opts.device)
        count = 0
        for b, x in _streamed(batches, opts.device):
            if opts.cancel is not None and opts.cancel.is_set():
                raise KeyboardInterrupt("training cancelled")
            if opts.task in WHOLE_IMAGE and len(b.idx) < 2:
                continue  # batch norm cannot train on a single image
            x, targets = augment_batch(x, b.targets, b.augment, b.rows.size, gen, task=opts.task)
            if opts.cuda and opts.task in WHOLE_IMAGE:
                x = x.contiguous(memory_format=torch.channels_last)
            y = _targets_to(targets, opts)
            if cons is not None:
                take = cons.ratio * len(b.idx)
                while len(unlabeled) < take:  # a pool smaller than the epoch's steps: again
                    unlabeled += torch.randperm(len(cons.rows), generator=gen).tolist()
                idx_u, unlabeled = unlabeled[:take], unlabeled[take:]
                u = cons.rows.batch(idx_u, opts.device)
                weak, _ = augment_batch(u, [0] * len(idx_u), "weak", u.shape[-1], gen)
                hard, _ = augment_batch(u, [0] * len(idx_u), "randaugment", u.shape[-1], gen)
                with _autocast(opts.device):
                    loss, kept = _fixmatch_loss(net, x, y, weak, hard, cons)
                sure += kept
            else:
                with _autocast(opts.device):
                    loss = loss_of(net, x, y, opts.task)
            if not opts.cuda and not torch.isfinite(loss):
                raise Diverged(
                    f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            scaler.step(optimizer)
            scaler.update()
            if step < steps:
                scheduler.step()
            step += 1
            total += loss.detach().float() * len(b.idx)
            count += len(b.idx)
        if size > 1:
            summed = torch.stack([total, torch.tensor(float(count), device=opts.device)])
            torch.distributed.all_reduce(summed)
            total, count = summed[0], int(summed[1].item())
        if cons is not None:
            cons.kept.append(int(sure.item()))
        mean = total.item() / max(count, 1)
        if not np.isfinite(mean):
            raise Diverged(f"the loss became {mean} in epoch {epoch + 1}")
        history.append(mean)
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    model.eval()
    return history


def _fixmatch_loss(
    net: nn.Module, x: Tensor, y: Tensor, weak: Tensor, strong: Tensor, cons: Consistency
) -> tuple[Tensor, Tensor]:
    """The labeled cross-entropy plus FixMatch's masked one on the strong views, from one
    forward pass over all three batches (batch norm sees them together, as in FixMatch);
    and how many unlabeled images were sure enough to count."""
    logits = net(torch.cat([x, weak, strong]))
    n, m = len(x), len(weak)
    supervised = nn.functional.cross_entropy(logits[:n], y)
    probs = logits[n : n + m].detach().float().softmax(1)
    conf, target = probs.max(1)
    mask = (conf >= cons.threshold).float()
    unsup = nn.functional.cross_entropy(logits[n + m :], target, reduction="none")
    return supervised + cons.weight * (unsup * mask).mean(), mask.sum()


@torch.inference_mode()
def predict_views(
    model: nn.Module,
    data: ImageRows,
    *,
    task: str,
    device: torch.device,
    batch_size: int = 32,
    plain: bool = True,
    flip: bool = False,
    features: bool = False,
    progress: str | None = None,
) -> tuple:
    """What several passes over the images need, from one read of each image.

    Returns ``(plain, flipped, features)``, each None unless asked for: predictions on the
    images and on their mirror images (see `predict`) and ``(N, D)`` features (see
    `embed`). ``progress``: a tqdm bar over the batches with that description."""
    model.eval()
    data.prepare(device)
    features = features and has_features(model, task)
    chunks = [
        list(range(s, min(s + batch_size, len(data)))) for s in range(0, len(data), batch_size)
    ]
    outs: dict[str, list] = {"plain": [], "flip": [], "features": []}
    grabbed: list[Tensor] = []
    capturing = [False]  # features come from the plain pass only
    handle = None
    if features and task in WHOLE_IMAGE:
        last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        handle = last.register_forward_hook(
            lambda m, i, o: grabbed.append(i[0].detach()) if capturing[0] else None
        )
    try:
        batches = data.batches(chunks, device)
        if progress:
            batches = tqdm(batches, total=len(chunks), desc=progress, unit="batch")
        for idx, x in batches:
            if plain or handle is not None:
                capturing[0] = True
                outs["plain"] += _forward(model, x, idx, data, task, device, mirrored=False)
                capturing[0] = False
                if handle is not None:
                    outs["features"].append(grabbed.pop().float().flatten(1))
            if flip:
                outs["flip"] += _forward(model, x.flip(-1), idx, data, task, device, mirrored=True)
            if features and task == "detection":
                images, _ = model.transform(list(x))  # type: ignore[operator]
                maps = model.backbone(images.tensors)  # type: ignore[operator]
                deepest = list(maps.values())[-1] if isinstance(maps, dict) else maps
                outs["features"].append(deepest.float().mean(dim=(2, 3)))
    finally:
        if handle is not None:
            handle.remove()

    def assemble(parts: list):
        if task in WHOLE_IMAGE:
            return torch.cat(parts).cpu().numpy() if parts else np.zeros((0, 0))
        return parts

    feats = None
    if features:
        feats = torch.cat(outs["features"]).cpu().numpy() if outs["features"] else np.zeros((0, 0))
    return (
        assemble(outs["plain"]) if plain else None,
        assemble(outs["flip"]) if flip else None,
        feats,
    )


def _forward(
    model: nn.Module,
    x: Tensor,
    idx: list[int],
    data: ImageRows,
    task: str,
    device: torch.device,
    *,
    mirrored: bool,
) -> list:
    """Classification: one ``(B, K)`` probability tensor (in a list; multilabel: each
    label's own probability, a sigmoid). Detection: per image a
    dict of boxes in its own pixels (mapped back from the mirror image when ``mirrored``)."""
    if task in WHOLE_IMAGE:
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device):
            logits = model(x).float()
        return [torch.softmax(logits, dim=1) if task == "classification" else logits.sigmoid()]
    with _autocast(device):
        results = model(list(x))
    out = []
    for i, r in zip(idx, results):
        sx, sy = data.scale(i)
        boxes = r["boxes"].float().cpu().numpy().astype("float64")
        if mirrored:  # the whole square was mirrored (padding too): mirror it back
            boxes[:, [0, 2]] = data.size - boxes[:, [2, 0]]
        boxes /= np.array([sx, sy, sx, sy])
        w, h = data.original_size(i)
        boxes = np.clip(boxes, 0, [w, h, w, h])  # a letterbox's padding is not the image
        out.append(
            {
                "boxes": boxes,
                "labels": r["labels"].cpu().numpy() - 1,
                "scores": r["scores"].float().cpu().numpy().astype("float64"),
            }
        )
    return out


def predict(
    model: nn.Module,
    data: ImageRows,
    *,
    task: str,
    device: torch.device,
    batch_size: int = 32,
    flip: bool = False,
    progress: str | None = None,
) -> list:
    """Classification: ``(N, K)`` probabilities. Detection: per image a dict of ``boxes
    (K, 4)`` in the image's own pixels, ``labels (K,)`` 0-based and ``scores (K,)``.
    ``flip=True`` predicts on the mirrored images (boxes mapped back)."""
    plain, flipped, _ = predict_views(
        model,
        data,
        task=task,
        device=device,
        batch_size=batch_size,
        plain=not flip,
        flip=flip,
        progress=progress,
    )
    return flipped if flip else plain


def has_features(model: nn.Module, task: str) -> bool:
    """Whether `embed` can read features from ``model``."""
    if task in WHOLE_IMAGE:
        return any(isinstance(m, nn.Linear) for m in model.modules())
    return hasattr(model, "transform") and hasattr(model, "backbone")


def embed(
    model: nn.Module, data: ImageRows, *, task: str, device: torch.device, batch_size: int = 32
) -> np.ndarray:
    """``(N, D)`` features: the input of a classifier's last linear layer, or the detector
    backbone's deepest feature map averaged over space. ``(N, 0)`` for a model that shows
    neither (a user's callable wrapped with ``hx.wrap_model``): nothing is decoded then."""
    if not has_features(model, task):
        return np.zeros((len(data), 0), dtype=np.float32)
    return predict_views(
        model, data, task=task, device=device, batch_size=batch_size, plain=False, features=True
    )[2]


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
