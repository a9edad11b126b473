"""Images for torch: decoded once, resized to a square, kept as one uint8 tensor, and
augmented a whole batch at a time on the training device.

Images are resized (not letterboxed) to ``image_size × image_size``; boxes are scaled with
them, and predictions are scaled back to each image's own pixels. The decoded pixels live in
one ``(N, 3, S, S)`` uint8 tensor; on CUDA it is moved to the GPU once when it fits in a
quarter of the free memory (else pinned and copied per batch), so a training step does no
per-image Python work on the pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from ..media import load_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """ImageNet normalization inside the model, so an exported model takes 0..1 images."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def resized(image: Image.Image | np.ndarray | str | Path, size: int) -> tuple[Tensor, tuple[int, int]]:
    """``(3, size, size)`` uint8 tensor and the original ``(width, height)``."""
    if isinstance(image, (str, Path)):
        image = load_rgb(image)
    elif isinstance(image, np.ndarray):
        image = Image.fromarray(image).convert("RGB")
    else:
        image = image.convert("RGB")
    original = image.size
    image = image.resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).contiguous(), original


class ImageRows:
    """Images (paths, PIL images or arrays) with optional targets.

    ``targets``: class indices (classification) or dicts with ``boxes (K, 4)`` in original
    pixels, ``labels (K,)`` 1-based and optional ``ignore (M, 4)`` (detection).
    """

    def __init__(self, images: Sequence, size: int, *, task: str, targets: Sequence | None = None):
        self.images = list(images)
        self.size = size
        self.task = task
        self.targets = list(targets) if targets is not None else None
        self._pixels = torch.empty((len(self.images), 3, size, size), dtype=torch.uint8)
        self._filled = np.zeros(len(self.images), dtype=bool)
        self._sizes: list[tuple[int, int] | None] = [None] * len(self.images)
        self._on_device: Tensor | None = None

    def __len__(self) -> int:
        return len(self.images)

    def _fill(self, indices) -> None:
        for i in indices:
            if not self._filled[i]:
                self._pixels[i], self._sizes[i] = resized(self.images[i], self.size)
                self._filled[i] = True

    def original_size(self, i: int) -> tuple[int, int]:
        self._fill([i])
        return self._sizes[i]

    def batch(self, indices: Sequence[int], device: torch.device) -> Tensor:
        """``(B, 3, S, S)`` float images in 0..1 on ``device``."""
        self._fill(indices)
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        if self._on_device is not None and self._on_device.device == device:
            u8 = self._on_device[idx.to(device)]
        else:
            u8 = self._pixels[idx]
            if device.type == "cuda":
                u8 = u8.pin_memory().to(device, non_blocking=True)
            else:
                u8 = u8.to(device)
        return u8.float().div_(255)

    def prepare(self, device: torch.device) -> None:
        """Decode everything; on CUDA keep the pixels on the GPU when they fit."""
        self._fill(range(len(self)))
        if device.type == "cuda" and self._on_device is None:
            free, _ = torch.cuda.mem_get_info(device)
            if self._pixels.numel() < free // 4:
                self._on_device = self._pixels.to(device)

    def scaled_target(self, i: int, target=None):
        """Target ``i`` (or the given one) in resized pixels, as tensors."""
        t = self.targets[i] if target is None else target
        if self.task == "classification":
            return int(t)
        w, h = self.original_size(i)
        scale = torch.tensor([self.size / w, self.size / h, self.size / w, self.size / h])
        out = {"boxes": torch.as_tensor(t["boxes"], dtype=torch.float32).reshape(-1, 4) * scale,
               "labels": torch.as_tensor(t["labels"], dtype=torch.int64).reshape(-1)}
        if t.get("ignore") is not None and len(t["ignore"]):
            out["ignore"] = torch.as_tensor(t["ignore"], dtype=torch.float32).reshape(-1, 4) * scale
        return out


def augment_batch(x: Tensor, targets: list, mode: str, size: int, gen: torch.Generator):
    """Random horizontal flips (and for ``"strong"`` brightness/contrast) on a whole batch.

    Random numbers come from the CPU generator ``gen`` so a seed gives the same run on any
    device. Boxes in ``targets`` are flipped with their images.
    """
    if mode == "none":
        return x, targets
    n = len(x)
    flip = torch.rand(n, generator=gen) < 0.5
    mask = flip.to(x.device).view(n, 1, 1, 1)
    x = torch.where(mask, x.flip(-1), x)
    out_targets = []
    for t, f in zip(targets, flip.tolist()):
        if f and isinstance(t, dict):
            t = dict(t)
            for key in ("boxes", "ignore"):
                if key in t:
                    b = t[key].clone()
                    b[:, [0, 2]] = size - t[key][:, [2, 0]]
                    t[key] = b
        out_targets.append(t)
    if mode == "strong":
        brightness = (0.7 + 0.6 * torch.rand(n, generator=gen)).to(x.device).view(n, 1, 1, 1)
        contrast = (0.7 + 0.6 * torch.rand(n, generator=gen)).to(x.device).view(n, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (((x - mean) * contrast + mean) * brightness).clamp_(0, 1)
    return x, out_targets
