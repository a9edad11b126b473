"""Images for torch: decoded, resized to a square, and batched, in memory when they fit a
budget and streamed through a DataLoader when they do not.

Images become ``image_size × image_size`` squares: stretched for classification (as
torchvision's classifiers are trained), letterboxed for detection (the long side fits, the
aspect ratio is kept, black fills the rest at the right or bottom), so a 4:3 photo's objects
keep their shape. Boxes are scaled with the pixels, and predictions are scaled back to each
image's own pixels. JPEGs are decoded in
Pillow's draft mode (at the smallest DCT scale that covers the target size).

Two ways through the images, chosen per `ImageRows` by its size against
``memory_budget`` (default: a quarter of the memory available when it is created):

- **in memory**: every image is decoded once (by DataLoader workers when there are many)
  into one ``(N, 3, S, S)`` uint8 tensor, kept for every epoch and pass; on CUDA it is moved
  to the GPU once when it fits in a quarter of the free memory;
- **streaming**: a ``torch.utils.data.DataLoader`` with worker processes decodes each batch
  as it is needed (pinned memory on CUDA, two batches prefetched per worker); memory stays
  flat whatever the number of images, and each pass decodes each image once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..media import fit_square, letterbox_size, load_resized, upright_size

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MEMORY_BUDGET: int | None = None  # bytes for decoded pixels; None: a quarter of free RAM


class Normalize(nn.Module):
    """ImageNet normalization inside the model, so an exported model takes 0..1 images."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    mean: Tensor
    std: Tensor

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def resized(
    image: Image.Image | np.ndarray | str | Path, size: int, *, letterbox: bool = False
) -> tuple[Tensor, tuple[int, int]]:
    """``(3, size, size)`` uint8 tensor and the original ``(width, height)``."""
    if isinstance(image, (str, Path)):
        pixels, original = load_resized(image, size, letterbox=letterbox)
    else:
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        image = image.convert("RGB")
        original = image.size
        pixels = fit_square(image, size, letterbox=letterbox)
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).contiguous(), original


def available_memory() -> int:
    """Bytes of memory available now (physical pages free), or 4 GiB where unknown."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


class _Decoded(Dataset):
    """Item ``i``: image ``i`` resized (uint8 ``(3, S, S)``) and its original size."""

    def __init__(self, images: Sequence, size: int, letterbox: bool):
        self.images, self.size, self.letterbox = images, size, letterbox

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return (i, *resized(self.images[i], self.size, letterbox=self.letterbox))


def _collate(items):
    idx, pixels, sizes = zip(*items)
    return list(idx), torch.stack(pixels), list(sizes)


class ImageRows:
    """Images (paths, PIL images or arrays) with optional targets.

    ``targets``: class indices (classification) or dicts with ``boxes (K, 4)`` in original
    pixels, ``labels (K,)`` 1-based and optional ``ignore (M, 4)`` (detection).
    ``memory_budget``: bytes the decoded pixels may take in memory (see the module notes);
    ``workers``: decoding processes (default: the CPU cores, up to 8); ``letterbox``: keep
    the aspect ratio (default: for detection; see the module notes).
    """

    def __init__(
        self,
        images: Sequence,
        size: int,
        *,
        task: str,
        targets: Sequence | None = None,
        memory_budget: int | None = None,
        workers: int | None = None,
        letterbox: bool | None = None,
    ):
        self.images = list(images)
        self.size = size
        self.task = task
        self.letterbox = task == "detection" if letterbox is None else letterbox
        self.targets = list(targets) if targets is not None else None
        budget = memory_budget if memory_budget is not None else MEMORY_BUDGET
        self.memory_budget = budget if budget is not None else available_memory() // 4
        self.streaming = len(self.images) * 3 * size * size > self.memory_budget
        self.workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
        self._pixels: Tensor | None = None
        self._filled = np.zeros(len(self.images), dtype=bool)
        self._sizes: list[tuple[int, int] | None] = [None] * len(self.images)
        self._on_device: Tensor | None = None

    def __len__(self) -> int:
        return len(self.images)

    def _loader(self, index_batches: Sequence[Sequence[int]], device: torch.device) -> DataLoader:
        workers = self.workers if sum(len(b) for b in index_batches) > 64 else 0
        return DataLoader(
            _Decoded(self.images, self.size, self.letterbox),
            batch_sampler=[list(b) for b in index_batches],
            num_workers=workers,
            collate_fn=_collate,
            pin_memory=device.type == "cuda",
            prefetch_factor=2 if workers else None,
        )

    def _fill(self, indices, device: torch.device | None = None) -> None:
        todo = [i for i in indices if not self._filled[i]]
        if not todo:
            return
        if self._pixels is None:
            self._pixels = torch.empty(
                (len(self.images), 3, self.size, self.size), dtype=torch.uint8
            )
        chunks = [todo[s : s + 64] for s in range(0, len(todo), 64)]
        for idx, pixels, sizes in self._loader(chunks, device or torch.device("cpu")):
            self._pixels[idx] = pixels
            for i, wh in zip(idx, sizes):
                self._sizes[i] = wh
            self._filled[idx] = True

    def original_size(self, i: int) -> tuple[int, int]:
        """The upright ``(width, height)`` of image ``i`` (a header read when streaming)."""
        if self._sizes[i] is None:
            image = self.images[i]
            if isinstance(image, (str, Path)):
                self._sizes[i] = upright_size(image)
            elif isinstance(image, np.ndarray):
                self._sizes[i] = (image.shape[1], image.shape[0])
            else:
                self._sizes[i] = image.size
        size = self._sizes[i]
        assert size is not None
        return size

    def scale(self, i: int) -> tuple[float, float]:
        """Square pixels per original pixel of image ``i``, along x and y."""
        w, h = self.original_size(i)
        if self.letterbox:
            lw, lh = letterbox_size(w, h, self.size)
            return lw / w, lh / h
        return self.size / w, self.size / h

    def _to(self, u8: Tensor, device: torch.device) -> Tensor:
        if device.type == "cuda" and not u8.is_cuda:
            u8 = (u8 if u8.is_pinned() else u8.pin_memory()).to(device, non_blocking=True)
        else:
            u8 = u8.to(device)
        return u8.float().div_(255)

    def batch(self, indices: Sequence[int], device: torch.device) -> Tensor:
        """``(B, 3, S, S)`` float images in 0..1 on ``device``."""
        indices = list(indices)
        if self.streaming:  # one batch through the same loader as every streamed pass
            ((_, x),) = self.batches([indices], device)
            return x
        self._fill(indices)
        idx = torch.as_tensor(indices, dtype=torch.long)
        if self._on_device is not None and self._on_device.device == device:
            return self._on_device[idx.to(device)].float().div_(255)
        assert self._pixels is not None
        return self._to(self._pixels[idx], device)

    def batches(
        self, index_batches: Sequence[Sequence[int]], device: torch.device
    ) -> Iterator[tuple[list[int], Tensor]]:
        """``(indices, (B, 3, S, S) float images)`` for each batch of indices, in order:
        from memory, or decoded by DataLoader workers while the previous batch computes."""
        lists = [list(b) for b in index_batches]
        if not self.streaming:
            for b in lists:
                yield b, self.batch(b, device)
            return
        for idx, pixels, sizes in self._loader(lists, device):
            for i, wh in zip(idx, sizes):
                self._sizes[i] = wh
            yield idx, self._to(pixels, device)

    def prepare(self, device: torch.device) -> None:
        """In memory: decode everything once; on CUDA keep the pixels on the GPU when they
        fit. Streaming: nothing to do ahead."""
        if self.streaming:
            return
        self._fill(range(len(self)), device)
        if device.type == "cuda" and self._on_device is None and self._pixels is not None:
            free, _ = torch.cuda.mem_get_info(device)
            if self._pixels.numel() < free // 4:
                self._on_device = self._pixels.to(device)

    def scaled_target(self, i: int, target=None):
        """Target ``i`` (or the given one) in resized pixels, as tensors."""
        t = self.targets[i] if target is None and self.targets is not None else target
        if self.task == "classification":
            return int(t)
        if self.task == "multilabel":  # a 0 / 1 per label
            return torch.as_tensor(t, dtype=torch.float32)
        sx, sy = self.scale(i)
        scale = torch.tensor([sx, sy, sx, sy])
        out = {
            "boxes": torch.as_tensor(t["boxes"], dtype=torch.float32).reshape(-1, 4) * scale,
            "labels": torch.as_tensor(t["labels"], dtype=torch.int64).reshape(-1),
        }
        if t.get("ignore") is not None and len(t["ignore"]):
            out["ignore"] = torch.as_tensor(t["ignore"], dtype=torch.float32).reshape(-1, 4) * scale
        return out


def augmentation(mode: str, task: str, size: int) -> v2.Transform | None:
    """The torchvision ``transforms.v2`` pipeline of one augmentation mode, per image.

    - ``"none"``: nothing;
    - ``"weak"`` (labeled training): a random horizontal flip;
    - ``"strong"`` (pseudo-labeled images in ``mode="accurate"``): the flip, colour jitter
      (brightness and contrast ±30 %) and, for classification, a random resized crop (60–100 %
      of the area), for detection a random zoom-out (up to 1.5×) resized back to the square:
      scale jitter that keeps every box whole.

    Boxes (``tv_tensors.BoundingBoxes``: the targets and the ignore regions) move with the
    pixels; the output is ``size × size``.
    """
    if mode == "none":
        return None
    if mode not in ("weak", "strong", "randaugment"):
        raise ValueError(f"augment={mode!r}: use 'none', 'weak' or 'strong'")
    steps: list[v2.Transform] = [v2.RandomHorizontalFlip(0.5)]
    if mode == "randaugment":  # FixMatch's strong view of an unlabeled image
        return v2.Compose(
            steps
            + [
                v2.RandAugment(num_ops=2, magnitude=10),
                v2.RandomErasing(p=1.0, scale=(0.02, 0.15), value=0.5),
            ]
        )
    if mode == "strong":
        steps.append(v2.ColorJitter(brightness=0.3, contrast=0.3))
        if task == "classification":
            steps.append(v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True))
        else:
            steps += [
                v2.RandomZoomOut(fill=0.0, side_range=(1.0, 1.5), p=0.5),
                v2.Resize((size, size), antialias=True),
            ]
    return v2.Compose(steps)


def augment_batch(
    x: Tensor,
    targets: list,
    mode: str | Callable,
    size: int,
    gen: torch.Generator,
    *,
    task: str | None = None,
):
    """Augment each image of a ``(B, 3, S, S)`` 0..1 batch (on whatever device it is) with
    `augmentation` ``(mode)``, or with ``mode`` itself when it is a callable
    (a ``transforms.v2`` transform the user passed: it gets ``(image, target)`` with the
    boxes as ``tv_tensors.BoundingBoxes`` and must keep the image ``S × S``).

    Random numbers come from the CPU generator ``gen`` (the global torch generator is left as
    it was), so a seed gives the same run on any device.
    """
    detection = bool(targets) and isinstance(targets[0], dict)
    task = task or ("detection" if detection else "classification")
    transform = mode if callable(mode) else augmentation(mode, task, size)
    if transform is None:
        return x, targets
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    images, out_targets = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for image, t in zip(x, targets):
            if detection:
                canvas = (size, size)
                t = dict(t)
                for key in ("boxes", "ignore"):
                    if key in t:
                        t[key] = tv_tensors.BoundingBoxes(t[key], format="XYXY", canvas_size=canvas)
                image, t = transform(tv_tensors.Image(image), t)
                t = {k: v.as_subclass(Tensor) if isinstance(v, Tensor) else v for k, v in t.items()}
            else:
                image = transform(tv_tensors.Image(image))
            if tuple(image.shape[-2:]) != (size, size):
                raise ValueError(
                    f"the augmentation returned a {tuple(image.shape[-2:])} image; "
                    f"it must keep the {size}×{size} input size"
                )
            images.append(image.as_subclass(Tensor))
            out_targets.append(t)
    return torch.stack(images).clamp_(0, 1), out_targets
