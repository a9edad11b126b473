"""Image checks (format, size, aspect, pixels), decoding and thumbnails.

The limits follow the annotation platform hardex_nb mirrors: JPG/JPEG/PNG/BMP only, at most
100 MB a file, an aspect ratio within 6:1, and between 30×30 and 9344×7000 pixels (long side
≤ 9344, short side ≤ 7000, either orientation). Images uploaded for tiling may be up to
10000×30000 pixels.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from .errors import ImageError

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp"}
PIL_FORMATS = {"JPEG", "PNG", "BMP", "MPO"}  # MPO: multi-picture JPEG written by some cameras
MAX_BYTES = 100 * 1024 * 1024
MIN_SIDE = 30
MAX_LONG, MAX_SHORT = 9344, 7000
MAX_LONG_TILING, MAX_SHORT_TILING = 30000, 10000
MAX_ASPECT = 6.0

ImageFile.LOAD_TRUNCATED_IMAGES = False


@contextlib.contextmanager
def _allow_tiling_sources():
    """Raise Pillow's decompression-bomb limit to the tiling maximum, then restore it."""
    previous_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_LONG_TILING * MAX_SHORT_TILING
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit


@dataclass(frozen=True)
class ImageInfo:
    """What a successful check learned about an image file."""

    path: Path
    width: int
    height: int
    format: str


def check_image(path: str | Path, *, for_tiling: bool = False) -> ImageInfo:
    """Check that ``path`` is an image the dataset accepts, decoding every pixel.

    Raises
    ------
    ImageError
        With the file name and the rule it breaks.
    """
    path = Path(path)
    name = path.name
    if path.suffix.lower() not in EXTENSIONS:
        raise ImageError(f"{name}: format {path.suffix or '(none)'} is not supported; "
                         "use JPG, JPEG, PNG or BMP.")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"{name}: cannot read the file ({exc.strerror}).") from exc
    if size > MAX_BYTES:
        raise ImageError(f"{name}: {size / 2**20:.1f} MB is over the 100 MB limit; "
                         "compress or downscale it.")
    max_long, max_short = (MAX_LONG_TILING, MAX_SHORT_TILING) if for_tiling else (MAX_LONG, MAX_SHORT)
    try:
        with _allow_tiling_sources(), Image.open(path) as img:
            fmt = img.format or ""
            width, height = img.size
            if fmt not in PIL_FORMATS:
                raise ImageError(f"{name}: the file holds {fmt or 'unknown'} data, not JPG, PNG "
                                 "or BMP; convert it.")
            _check_size(name, width, height, max_long, max_short, for_tiling)
            img.load()  # decodes every pixel: truncated or corrupt data fails here
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc}); re-export it.") from exc
    return ImageInfo(path=path, width=width, height=height, format="JPEG" if fmt == "MPO" else fmt)


def _check_size(name: str, width: int, height: int, max_long: int, max_short: int,
                for_tiling: bool) -> None:
    long_side, short_side = max(width, height), min(width, height)
    if short_side < MIN_SIDE:
        raise ImageError(f"{name}: {width}×{height} px is below the {MIN_SIDE}×{MIN_SIDE} minimum.")
    if long_side > max_long or short_side > max_short:
        hint = "tile it with hardex_nb.tile" if not for_tiling else "downscale it"
        raise ImageError(f"{name}: {width}×{height} px is over the {max_long}×{max_short} maximum; "
                         f"{hint}.")
    if long_side / short_side > MAX_ASPECT:
        raise ImageError(f"{name}: aspect ratio {long_side / short_side:.1f}:1 is over 6:1; "
                         "crop it.")


def load_rgb(path: str | Path) -> Image.Image:
    """Decode an image as RGB (large tiling sources allowed)."""
    try:
        with _allow_tiling_sources(), Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"{Path(path).name}: cannot decode ({exc}).") from exc


def load_array(path: str | Path) -> np.ndarray:
    """Decode an image as an RGB array of shape ``(H, W, 3)``, dtype uint8."""
    return np.asarray(load_rgb(path))


def thumbnail_bytes(path: str | Path, *, size: int = 160, quality: int = 80) -> bytes:
    """A JPEG thumbnail whose long side is at most ``size`` pixels."""
    try:
        with _allow_tiling_sources(), Image.open(path) as img:
            img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
            img = img.convert("RGB")
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=quality)
            return buf.getvalue()
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"{Path(path).name}: cannot decode ({exc}).") from exc
