"""RoIAlign as two matrix products: torchvision's numbers, several times faster on a CPU.

RoIAlign averages bilinear samples on a regular grid in each bin. Bilinear weights are a
product of a weight along y and one along x, and the grid is the product of its rows and
columns, so the pooled bin ``(p, q)`` of a region is ``Wy[p] · F · Wx[q]ᵀ`` per channel:
``Wy`` (bins × rows) and ``Wx`` (bins × columns) hold each region's summed sample weights,
including torchvision's rules at the border (a sample more than a pixel outside counts 0, one
past the last pixel takes that pixel's value). On a small feature map those two products, and their
gradients, run on the CPU's matrix kernels, where torchvision's CPU backward is one thread of
scalar scatter-adds: most of a Faster R-CNN training step on these machines. On a large map
the dense rows cost more than they save, so each level picks the faster of the two
(``roi_align`` below); CUDA, TorchScript and ONNX export always take torchvision's.
"""

from __future__ import annotations

from typing import Any

import torch
import torchvision
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import roi_align as torchvision_roi_align

# private helpers of torchvision's own MultiScaleRoIAlign.forward (torchvision is pinned)
from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales

# the largest feature map (rows × columns) pooled densely. Measured on 2 cores with 256
# channels and 8 images × 64 regions: at 24×24 the dense form takes 63 ms against
# torchvision's 401 ms (forward and backward), at 64×64 197 ms against 456 ms, at 96×96
# 630 ms against 559 ms. Inference alone (no backward) breaks even earlier, at about 48×48.
DENSE_MAX_TRAIN = 64 * 64
DENSE_MAX_INFER = 40 * 40
# regions pooled in one product: bounds the (regions, bins, channels, columns) intermediate
CHUNK_ELEMENTS = 1 << 23


def _axis_weights(start: Tensor, bin_size: Tensor, bins: int, grid: int, size: int) -> Tensor:
    """``(K, bins, size)``: each bin's bilinear weights along one axis, averaged over its
    ``grid`` samples, with the border rules of torchvision's kernel."""
    dtype = start.dtype
    steps = (torch.arange(grid, dtype=dtype, device=start.device) + 0.5) / grid
    at = torch.arange(bins, dtype=dtype, device=start.device)
    s = start[:, None, None] + (at[None, :, None] + steps[None, None, :]) * bin_size[:, None, None]
    inside = ((s >= -1.0) & (s <= size)).to(dtype) / grid
    s = s.clamp(min=0)
    low = s.floor().long()
    last = low >= size - 1
    low = torch.where(last, size - 1, low)
    high = torch.where(last, size - 1, low + 1)
    frac = s - low  # past the last pixel both taps are that pixel: its weight is 1
    weights = torch.zeros(start.shape[0], bins, size, dtype=dtype, device=start.device)
    weights.scatter_add_(2, low, (1.0 - frac) * inside)
    weights.scatter_add_(2, high, frac * inside)
    return weights


def separable_roi_align(
    features: Tensor,
    rois: Tensor,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool = False,
) -> Tensor:
    """``torchvision.ops.roi_align`` (``rois`` as ``(K, 5)``: batch index, x1, y1, x2, y2)
    computed as ``Wy · F · Wxᵀ``; differentiable in ``features``. Needs ``sampling_ratio > 0``."""
    n, channels, height, width = features.shape
    ph, pw = output_size
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, i] * spatial_scale - offset for i in range(1, 5))
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = rw.clamp(min=1.0), rh.clamp(min=1.0)
    wy = _axis_weights(y1, rh / ph, ph, sampling_ratio, height).to(features.dtype)
    wx = _axis_weights(x1, rw / pw, pw, sampling_ratio, width).to(features.dtype)
    image = rois[:, 0].long()
    chunk = max(1, CHUNK_ELEMENTS // (ph * channels * width))
    pieces, order = [], []
    for b in range(n):
        mine = torch.nonzero(image == b).squeeze(1)
        rows = features[b].transpose(0, 1).reshape(height, channels * width)  # (H, C·W)
        for part in mine.split(chunk):
            # (k, ph, H) @ (H, C·W) → (k, ph·C, W) @ (k, W, pw) → (k, ph, C, pw)
            across = torch.matmul(wy[part], rows).view(-1, ph * channels, width)
            pooled = torch.bmm(across, wx[part].transpose(1, 2)).view(-1, ph, channels, pw)
            pieces.append(pooled.permute(0, 2, 1, 3))
            order.append(part)
    if not pieces:
        return features.new_zeros((0, channels, ph, pw))
    return torch.cat(pieces)[torch.argsort(torch.cat(order))]


def roi_align(
    features: Tensor,
    rois: Tensor,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
) -> Tensor:
    """The faster of the two forms for this level: dense on a small CPU map, else torchvision."""
    dense_max = DENSE_MAX_TRAIN if features.requires_grad else DENSE_MAX_INFER
    if (
        features.device.type == "cpu"
        and sampling_ratio > 0
        and features.shape[-2] * features.shape[-1] <= dense_max
    ):
        return separable_roi_align(features, rois, output_size, spatial_scale, sampling_ratio)
    return torchvision_roi_align(
        features, rois, output_size, spatial_scale=spatial_scale, sampling_ratio=sampling_ratio
    )


class SeparableRoIAlign(MultiScaleRoIAlign):
    """torchvision's ``MultiScaleRoIAlign`` (same levels, same numbers) pooling each level with
    `roi_align` above. Export swaps the class back (``models.without_training_overrides``)."""

    def forward(
        self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> Tensor:
        features = _filter_input(x, self.featmap_names)
        if features[0].device.type != "cpu" or torchvision._is_tracing():
            return super().forward(x, boxes, image_shapes)
        scales: list[float] | None = self.scales  # type: ignore[has-type]
        mapper: Any = self.map_levels  # type: ignore[has-type]
        if scales is None or mapper is None:
            scales, mapper = _setup_scales(
                features, image_shapes, self.canonical_scale, self.canonical_level
            )
            self.scales, self.map_levels = scales, mapper
        rois = _convert_to_roi_format(boxes)
        size = (int(self.output_size[0]), int(self.output_size[1]))
        if len(features) == 1:
            return roi_align(features[0], rois, size, scales[0], self.sampling_ratio)
        levels = mapper(boxes)
        result = features[0].new_zeros((len(rois), features[0].shape[1], *size))
        for level, (per_level, scale) in enumerate(zip(features, scales)):
            idx = torch.where(levels == level)[0]
            pooled = roi_align(per_level, rois[idx], size, scale, self.sampling_ratio)
            result[idx] = pooled.to(result.dtype)
        return result
