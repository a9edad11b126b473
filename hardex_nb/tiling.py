"""Small objects on large images: area-ratio advice, tiling, untiling and seam merge.

Advice (the ratio of image area to the smallest object's area; scaling both to a
1-megapixel standard image leaves the ratio unchanged): up to 1000 is fine, 1000-5000 calls
for a higher input resolution, over 5000 for tiling.

Tiling rules: an image is cut into a grid with the larger count along its long side; tiles
are at most 3000×5000 and at least 30×30 pixels. A box cut by a seam is clipped to each
tile; a clipped part is kept when both its sides are at least ``min_side`` pixels (4 by
default) and it keeps at least ``min_share`` (20%) of the box's area, so slivers are
dropped. Polygons become their clipped bounding boxes in tiles. Untiling maps boxes back,
joins same-label parts that meet at a seam into their union, then removes duplicates with
per-label NMS.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import ValidationError

FINE, RAISE_RESOLUTION = 1000.0, 5000.0
MAX_TILE_LONG, MAX_TILE_SHORT = 5000, 3000
MIN_TILE = 30


@dataclass(frozen=True)
class Advice:
    """``ratio`` (image area / smallest object area), ``action`` (fine, raise the input
    resolution, tile), and ``grid`` (rows, cols) that brings the ratio to 1000 or below.
    """

    ratio: float
    action: str
    grid: tuple[int, int]
    sample_id: int | None = None

    def __str__(self) -> str:
        return f"area ratio {self.ratio:.0f}: {self.action}" + (
            f" (suggested grid {self.grid[0]}×{self.grid[1]})" if self.action == "tile" else ""
        )


def advise_ratio(ratio: float, width: int, height: int) -> Advice:
    """Advice for one area ratio on a ``width × height`` image."""
    if ratio <= FINE:
        return Advice(ratio, "fine", (1, 1))
    if ratio <= RAISE_RESOLUTION:
        return Advice(ratio, "raise the input resolution", (1, 1))
    tiles = math.ceil(ratio / FINE)
    return Advice(ratio, "tile", grid_for(width, height, tiles))


def grid_for(width: int, height: int, tiles: int) -> tuple[int, int]:
    """(rows, cols) with at least ``tiles`` tiles, as square as possible."""
    best: tuple[tuple[float, int], tuple[int, int]] | None = None
    for rows in range(1, tiles + 1):
        cols = math.ceil(tiles / rows)
        tw, th = width / cols, height / rows
        badness = (max(tw, th) / min(tw, th), rows * cols)
        if best is None or badness < best[0]:
            best = (badness, (rows, cols))
    assert best is not None  # tiles >= 1
    return best[1]


def advise(ds) -> Advice:
    """Advice for a detection dataset from its smallest object relative to its image."""
    ann = ds.annotations
    ann = ann[ann["kind"] != "ignore"]
    if ann.empty:
        raise ValidationError("advise needs annotated objects; label some boxes first.")
    s = ds.samples.set_index("sample_id")[["width", "height"]]
    a = ann.join(s, on="sample_id")
    area = ((a["x1"] - a["x0"]) * (a["y1"] - a["y0"])).clip(lower=1e-9)
    ratio = (a["width"] * a["height"]) / area
    worst = int(ratio.to_numpy().argmax())
    row = a.iloc[worst]
    advice = advise_ratio(float(ratio.iloc[worst]), int(row["width"]), int(row["height"]))
    return Advice(advice.ratio, advice.action, advice.grid, int(row["sample_id"]))


def tile_windows(
    width: int, height: int, rows: int, cols: int
) -> list[tuple[int, int, int, int, int, int]]:
    """Tiles as (row, col, x0, y0, x1, y1); the larger count goes along the long side."""
    if rows < 1 or cols < 1:
        raise ValidationError("rows and cols must be at least 1.")
    n_long, n_short = max(rows, cols), min(rows, cols)
    n_rows, n_cols = (n_short, n_long) if width >= height else (n_long, n_short)
    xs = np.linspace(0, width, n_cols + 1).round().astype(int)
    ys = np.linspace(0, height, n_rows + 1).round().astype(int)
    tw, th = int(np.diff(xs).max()), int(np.diff(ys).max())
    if max(tw, th) > MAX_TILE_LONG or min(tw, th) > MAX_TILE_SHORT:
        raise ValidationError(
            f"{width}×{height} px in {n_rows}×{n_cols} tiles gives {tw}×{th} px "
            f"tiles, over {MAX_TILE_SHORT}×{MAX_TILE_LONG}; use more tiles."
        )
    if min(np.diff(xs).min(), np.diff(ys).min()) < MIN_TILE:
        raise ValidationError(
            f"{width}×{height} px in {n_rows}×{n_cols} tiles gives tiles under "
            f"{MIN_TILE}×{MIN_TILE} px; use fewer tiles."
        )
    return [
        (r, c, int(xs[c]), int(ys[r]), int(xs[c + 1]), int(ys[r + 1]))
        for r in range(n_rows)
        for c in range(n_cols)
    ]


def boxes_in_tile(
    boxes: pd.DataFrame, window, *, min_side: float = 4.0, min_share: float = 0.2
) -> pd.DataFrame:
    """Boxes (x0..y1 in image pixels) clipped to one tile, in tile pixels (sliver rule above)."""
    _, _, tx0, ty0, tx1, ty1 = window
    b = boxes.copy()
    x0, y0 = b["x0"].clip(tx0, tx1), b["y0"].clip(ty0, ty1)
    x1, y1 = b["x1"].clip(tx0, tx1), b["y1"].clip(ty0, ty1)
    w, h = x1 - x0, y1 - y0
    area = (b["x1"] - b["x0"]) * (b["y1"] - b["y0"])
    keep = (w >= min_side) & (h >= min_side) & (w * h >= min_share * area)
    b["x0"], b["y0"], b["x1"], b["y1"] = x0 - tx0, y0 - ty0, x1 - tx0, y1 - ty0
    return b[keep].reset_index(drop=True)


def untile(
    boxes: pd.DataFrame,
    *,
    seams_x=(),
    seams_y=(),
    tolerance: float = 1.0,
    iou_threshold: float = 0.5,
) -> pd.DataFrame:
    """Boxes already in image pixels (x0..y1, label, optional score): join same-label parts
    meeting at a seam into their union, then per-label NMS.
    """
    b = boxes.reset_index(drop=True).copy()
    if "score" not in b:
        b["score"] = 1.0
    merged = True
    while merged:
        merged = False
        for axis, seams in (("x", seams_x), ("y", seams_y)):
            lo, hi = (f"{axis}0", f"{axis}1")
            olo, ohi = ("y0", "y1") if axis == "x" else ("x0", "x1")
            for s in seams:
                left = b.index[(b[hi] - s).abs() <= tolerance]
                right = b.index[(b[lo] - s).abs() <= tolerance]
                for i in left:
                    for j in right:
                        if i == j or i not in b.index or j not in b.index:
                            continue
                        if b.at[i, "label"] != b.at[j, "label"]:
                            continue
                        overlap = min(b.at[i, ohi], b.at[j, ohi]) - max(b.at[i, olo], b.at[j, olo])
                        shorter = min(b.at[i, ohi] - b.at[i, olo], b.at[j, ohi] - b.at[j, olo])
                        if overlap < 0.5 * shorter:
                            continue
                        for c, f in (("x0", min), ("y0", min), ("x1", max), ("y1", max)):
                            b.at[i, c] = f(b.at[i, c], b.at[j, c])
                        b.at[i, "score"] = max(b.at[i, "score"], b.at[j, "score"])
                        b = b.drop(index=j)
                        merged = True
    return _nms(b.reset_index(drop=True), iou_threshold)


def _nms(b: pd.DataFrame, iou_threshold: float) -> pd.DataFrame:
    import torch
    import torchvision

    if b.empty:
        return b
    codes, _ = pd.factorize(b["label"])
    keep = torchvision.ops.batched_nms(
        torch.tensor(b[["x0", "y0", "x1", "y1"]].to_numpy(float)),
        torch.tensor(b["score"].to_numpy(float)),
        torch.as_tensor(codes),
        iou_threshold,
    )
    return b.iloc[np.sort(keep.numpy())].reset_index(drop=True)


MIN_SOURCE = (30, 60)  # short side, long side: the smallest image worth tiling


def predict_tiled(
    predict_fn: Callable[[list], pd.DataFrame],
    image,
    rows: int,
    cols: int,
    *,
    iou_threshold: float = 0.5,
) -> pd.DataFrame:
    """Detection on one large image, tile by tile (supervision's InferenceSlicer in the
    grid `tile_windows` cuts for training): ``predict_fn`` gets the list of tile
    crops and returns one frame of boxes with columns ``image`` (the crop's position in
    the list), ``label``, ``x0 y0 x1 y1`` (crop pixels) and ``score``. The boxes are moved
    back to the full image, parts cut by a seam joined and duplicates removed
    (`untile`). ``image`` is a PIL image (anything with ``width``, ``height`` and
    ``crop``).
    """
    windows = tile_windows(image.width, image.height, rows, cols)
    pred = predict_fn([image.crop(w[2:]) for w in windows])
    missing = {"image", "label", "x0", "y0", "x1", "y1", "score"} - set(pred.columns)
    if missing:
        raise ValidationError(
            f"predict_fn returned a frame without the column(s) {sorted(missing)}; return "
            "one row per box with image (the crop's index), label, x0, y0, x1, y1, score."
        )
    parts = []
    for k, w in enumerate(windows):
        p = pred[pred["image"] == k][["label", "x0", "y0", "x1", "y1", "score"]].copy()
        p[["x0", "x1"]] += w[2]
        p[["y0", "y1"]] += w[3]
        parts.append(p)
    boxes = pd.concat(parts, ignore_index=True)
    return untile(
        boxes,
        seams_x=sorted({w[2] for w in windows} - {0}),
        seams_y=sorted({w[3] for w in windows} - {0}),
        iou_threshold=iou_threshold,
    )
