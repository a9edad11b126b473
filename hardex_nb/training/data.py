"""Torch datasets over dataset rows: decode once, resize to a square, augment on the fly.

Images are resized (not letterboxed) to ``image_size × image_size``; boxes are scaled with
them, and predictions are scaled back to each image's own pixels. Decoded images are kept
as uint8 tensors in memory, so epochs after the first cost no decoding.
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


class ImageRows(torch.utils.data.Dataset):
    """Images (paths or arrays) with optional targets, resized and cached.

    ``targets``: class indices (classification) or dicts with ``boxes (K, 4)`` in original
    pixels, ``labels (K,)`` 1-based and optional ``ignore (M, 4)`` (detection).
    """

    def __init__(self, images: Sequence, size: int, *, task: str, targets: Sequence | None = None,
                 augment: str = "none"):
        self.images = list(images)
        self.size = size
        self.task = task
        self.targets = list(targets) if targets is not None else None
        self.augment = augment
        self._cache: dict[int, tuple[Tensor, tuple[int, int]]] = {}

    def __len__(self) -> int:
        return len(self.images)

    def pixels(self, i: int) -> tuple[Tensor, tuple[int, int]]:
        if i not in self._cache:
            self._cache[i] = resized(self.images[i], self.size)
        return self._cache[i]

    def __getitem__(self, i: int):
        img, (w, h) = self.pixels(i)
        x = img.float().div_(255)
        target = self._scaled_target(i, w, h)
        if self.augment != "none":
            x, target = self._augment(x, target)
        return x, target, i

    def _scaled_target(self, i: int, w: int, h: int):
        if self.targets is None:
            return None
        t = self.targets[i]
        if self.task == "classification":
            return int(t)
        scale = torch.tensor([self.size / w, self.size / h, self.size / w, self.size / h])
        out = {"boxes": torch.as_tensor(t["boxes"], dtype=torch.float32).reshape(-1, 4) * scale,
               "labels": torch.as_tensor(t["labels"], dtype=torch.int64).reshape(-1)}
        if t.get("ignore") is not None and len(t["ignore"]):
            out["ignore"] = torch.as_tensor(t["ignore"], dtype=torch.float32).reshape(-1, 4) * scale
        return out

    def _augment(self, x: Tensor, target):
        gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,))))
        if torch.rand(1, generator=gen) < 0.5:
            x = x.flip(-1)
            if isinstance(target, dict):
                for key in ("boxes", "ignore"):
                    if key in target:
                        b = target[key].clone()
                        b[:, [0, 2]] = self.size - target[key][:, [2, 0]]
                        target[key] = b
        if self.augment == "strong":
            brightness = 0.7 + 0.6 * torch.rand(1, generator=gen)
            contrast = 0.7 + 0.6 * torch.rand(1, generator=gen)
            mean = x.mean()
            x = ((x - mean) * contrast + mean) * brightness
            x = x.clamp_(0, 1)
        return x, target


def collate(batch):
    xs, targets, idx = zip(*batch)
    return list(xs), list(targets), list(idx)
