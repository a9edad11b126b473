"""Image checks (format, size, aspect, pixels), decoding and thumbnails.

Images are upright as their EXIF orientation says (as labelme, CVAT and browsers show them):
stored sizes, decoded pixels and thumbnails are all after the rotation, so annotation
coordinates from EXIF-aware tools land where they were drawn.

The limits follow the annotation platform hardex_nb mirrors: JPG/JPEG/PNG/BMP only, at most
100 MB a file, an aspect ratio within 6:1, and between 30×30 and 9344×7000 pixels (long side
≤ 9344, short side ≤ 7000, either orientation). Images uploaded for tiling may be up to
10000×30000 pixels.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

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
    sha256: str | None = None  # of the file's bytes: the same image added twice is found


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
        raise ImageError(
            f"{name}: format {path.suffix or '(none)'} is not supported; use JPG, JPEG, PNG or BMP."
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"{name}: cannot read the file ({exc.strerror}).") from exc
    if size > MAX_BYTES:
        raise ImageError(
            f"{name}: {size / 2**20:.1f} MB is over the 100 MB limit; compress or downscale it."
        )
    max_long, max_short = (
        (MAX_LONG_TILING, MAX_SHORT_TILING) if for_tiling else (MAX_LONG, MAX_SHORT)
    )
    try:
        with _allow_tiling_sources(), Image.open(path) as img:
            fmt = img.format or ""
            width, height = _upright(img)
            if fmt not in PIL_FORMATS:
                raise ImageError(
                    f"{name}: the file holds {fmt or 'unknown'} data, not JPG, PNG "
                    "or BMP; convert it."
                )
            _check_size(name, width, height, max_long, max_short, for_tiling)
            img.load()  # decodes every pixel: truncated or corrupt data fails here
            if fmt == "PNG":
                _check_png_data(path)
    except ImageError:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        # PIL names the file by its full path, here often a temporary copy: its name says it
        why = str(exc).replace(f" '{path}'", "").replace(str(path), name)
        raise ImageError(f"{name}: corrupt or truncated image ({why}); re-export it.") from exc
    return ImageInfo(
        path=path,
        width=width,
        height=height,
        format="JPEG" if fmt == "MPO" else fmt,
        sha256=file_hash(path),
    )


# PNG color type -> samples per pixel; Adam7 passes as (x0, y0, dx, dy)
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = [
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
]


def _check_png_data(path: Path) -> None:
    """Refuse a PNG whose compressed image data holds fewer rows than its header promises.

    Pillow decodes a zlib stream that ends early but cleanly without complaint and leaves
    the missing rows black; this counts the decompressed bytes (streamed, nothing kept)
    against what the header's size, depth, color type and interlacing need."""
    data = path.read_bytes()
    pos, idat = 8, zlib.decompressobj()
    got, expected = 0, None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR" and len(body) >= 13:
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body[:13])
            bits = depth * _PNG_CHANNELS.get(color, 1)
            passes = _ADAM7 if interlace else [(0, 0, 1, 1)]
            expected = 0
            for x0, y0, dx, dy in passes:
                cols, rows = -(-(width - x0) // dx), -(-(height - y0) // dy)
                if cols > 0 and rows > 0:
                    expected += rows * (1 + -(-cols * bits // 8))
        elif kind == b"IDAT":
            while body:
                got += len(idat.decompress(body, 1 << 20))
                body = idat.unconsumed_tail
        elif kind == b"IEND":
            break
        pos += 12 + length
    if expected is not None and got < expected:
        raise ImageError(
            f"{path.name}: the PNG's image data ends early ({got} of {expected} "
            "bytes: the lower rows are missing); re-export it."
        )


def _rgb(img: Image.Image) -> Image.Image:
    """``img`` as 8-bit RGB; 16-bit grayscale is scaled (65535 → 255), not clipped."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        wide = np.asarray(img, dtype=np.uint32)
        scale = 257 if img.mode != "I" or wide.max(initial=0) > 255 else 1
        img = Image.fromarray((wide // scale).clip(0, 255).astype(np.uint8), mode="L")
    return img.convert("RGB")


_SWAPS_SIDES = {5, 6, 7, 8}  # EXIF orientations that turn the image by 90° or 270°


def _upright(img: Image.Image) -> tuple[int, int]:
    """(width, height) of ``img`` once turned upright by its EXIF orientation."""
    width, height = img.size
    try:
        orientation = img.getexif().get(0x0112)
    except (OSError, ValueError, SyntaxError):  # a damaged EXIF block: taken as upright
        orientation = None
    return (height, width) if orientation in _SWAPS_SIDES else (width, height)


def upright_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of the image file once turned upright (header only, no decode)."""
    try:
        with _allow_tiling_sources(), Image.open(path) as img:
            return _upright(img)
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"{Path(path).name}: cannot read ({exc}).") from exc


def _turned(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except (OSError, ValueError, SyntaxError):
        return img


def _check_size(
    name: str, width: int, height: int, max_long: int, max_short: int, for_tiling: bool
) -> None:
    long_side, short_side = max(width, height), min(width, height)
    if short_side < MIN_SIDE:
        raise ImageError(f"{name}: {width}×{height} px is below the {MIN_SIDE}×{MIN_SIDE} minimum.")
    if long_side > max_long or short_side > max_short:
        hint = "tile it with hardex_nb.tile" if not for_tiling else "downscale it"
        raise ImageError(
            f"{name}: {width}×{height} px is over the {max_long}×{max_short} maximum; {hint}."
        )
    if for_tiling and long_side < 60:
        raise ImageError(
            f"{name}: {width}×{height} px is too small to tile (at least 30×60); "
            "add it without for_tiling."
        )
    if long_side / short_side > MAX_ASPECT:
        raise ImageError(
            f"{name}: aspect ratio {long_side / short_side:.1f}:1 is over 6:1; crop it."
        )


def load_rgb(path: str | Path) -> Image.Image:
    """Decode an image as RGB (large tiling sources allowed)."""
    try:
        with _allow_tiling_sources(), Image.open(path) as img:
            return _rgb(_turned(img))
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"{Path(path).name}: cannot decode ({exc}).") from exc


def letterbox_size(width: int, height: int, size: int) -> tuple[int, int]:
    """The ``(width, height)`` an image takes inside a ``size`` square, aspect kept."""
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_square(img: Image.Image, size: int, *, letterbox: bool = False) -> np.ndarray:
    """``(size, size, 3)`` uint8: ``img`` stretched to the square, or with ``letterbox``
    scaled so its long side fits and placed at the top left, the rest black."""
    if not letterbox:
        return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR))
    w, h = letterbox_size(*img.size, size)
    out = np.zeros((size, size, 3), dtype=np.uint8)
    out[:h, :w] = np.asarray(img.resize((w, h), Image.Resampling.BILINEAR))
    return out


def load_resized(
    path: str | Path, size: int, *, letterbox: bool = False
) -> tuple[np.ndarray, tuple[int, int]]:
    """An upright RGB image as a ``(size, size, 3)`` uint8 square (see `fit_square`),
    and its upright ``(width, height)`` before resizing.

    JPEGs are decoded at the smallest DCT scale that still covers ``size`` (Pillow's draft
    mode): several times cheaper than a full decode for photos much larger than ``size``."""
    try:
        with _allow_tiling_sources(), Image.open(path) as img:
            original = _upright(img)
            img.draft("RGB", (size, size))
            return fit_square(_rgb(_turned(img)), size, letterbox=letterbox), original
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"{Path(path).name}: cannot decode ({exc}).") from exc


def load_array(path: str | Path) -> np.ndarray:
    """Decode an image as an RGB array of shape ``(H, W, 3)``, dtype uint8."""
    return np.asarray(load_rgb(path))


def thumbnail_bytes(path: str | Path, *, size: int = 160, quality: int = 80) -> bytes:
    """A JPEG thumbnail whose long side is at most ``size`` pixels."""
    try:
        with _allow_tiling_sources(), Image.open(path) as opened:
            opened.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
            img = _rgb(_turned(opened))
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=quality)
            return buf.getvalue()
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"{Path(path).name}: cannot decode ({exc}).") from exc
