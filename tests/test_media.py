from pathlib import Path

import pytest
from PIL import Image
from synthetic import write_image

from hardex_nb import ImageError, media


def test_accepts_each_supported_format(tmp_path: Path):
    for ext, fmt in ((".jpg", "JPEG"), (".jpeg", "JPEG"), (".png", "PNG"), (".bmp", "BMP")):
        info = media.check_image(write_image(tmp_path / f"a{ext}", 50, 40, fmt=fmt))
        assert (info.width, info.height) == (50, 40)


@pytest.mark.parametrize(
    "size, reason",
    [
        ((29, 100), "below the 30×30 minimum"),
        ((9345, 1600), "over the 9344×7000 maximum"),
        ((700, 100), "aspect ratio 7.0:1 is over 6:1"),
    ],
)
def test_size_rules(tmp_path: Path, size, reason):
    path = write_image(tmp_path / "x.png", *size)
    with pytest.raises(ImageError, match=reason) as err:
        media.check_image(path)
    assert "x.png" in str(err.value)


def test_portrait_at_the_limit_is_accepted(tmp_path: Path):
    # 7000 x 9344 (portrait) is the same limit turned; a tiny solid PNG keeps the test fast
    path = tmp_path / "tall.png"
    Image.new("L", (1600, 9344)).save(path)
    assert media.check_image(path).height == 9344


def test_tiling_sources_may_be_larger(tmp_path: Path):
    path = tmp_path / "big.png"
    Image.new("L", (12000, 2500)).save(path)
    with pytest.raises(ImageError, match="tile it"):
        media.check_image(path)
    assert media.check_image(path, for_tiling=True).width == 12000


def test_truncated_and_disguised_files(tmp_path: Path):
    good = write_image(tmp_path / "good.jpg", 200, 200, fmt="JPEG")
    data = good.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.jpg: corrupt or truncated"):
        media.check_image(tmp_path / "cut.jpg")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ImageError, match="text.png: corrupt"):
        media.check_image(tmp_path / "text.png")
    gif = tmp_path / "anim.png"
    Image.new("RGB", (40, 40)).save(gif, format="GIF")
    with pytest.raises(ImageError, match="holds GIF data"):
        media.check_image(gif)
    with pytest.raises(ImageError, match="format .gif is not supported"):
        media.check_image(write_image(tmp_path / "a.gif", 40, 40, fmt="GIF"))


def test_oversized_file_is_rejected_before_decoding(tmp_path: Path):
    path = write_image(tmp_path / "a.png", 40, 40)
    with open(path, "r+b") as f:  # sparse: 101 MB on paper, a few KB on disk
        f.truncate(101 * 2**20)
    with pytest.raises(ImageError, match="a.png: 101.0 MB is over the 100 MB limit"):
        media.check_image(path)


def test_thumbnail_is_small_jpeg(tmp_path: Path):
    path = write_image(tmp_path / "a.png", 640, 320)
    data = media.thumbnail_bytes(path, size=64)
    assert data[:2] == b"\xff\xd8"
    from io import BytesIO

    assert max(Image.open(BytesIO(data)).size) == 64


def _png_with_short_data(path: Path, width: int = 64, height: int = 64) -> Path:
    """A PNG whose zlib stream is complete but holds only half the rows (chunks and CRCs
    valid): decoders that do not count rows fill the rest with black."""
    import struct
    import zlib

    import numpy as np

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rng = np.random.default_rng(0)
    raw = b"".join(
        b"\x00" + rng.integers(1, 255, width * 3, dtype=np.uint8).tobytes()
        for _ in range(height // 2)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path


def test_a_png_whose_data_ends_early_is_rejected(tmp_path: Path):
    path = _png_with_short_data(tmp_path / "short.png")
    with Image.open(path) as img:
        img.load()  # the decoder itself does not notice
    with pytest.raises(ImageError, match="short.png: the PNG's image data ends early"):
        media.check_image(path)


@pytest.mark.parametrize("mode_bits", ["L", "RGB", "RGBA", "P", "1"])
def test_complete_pngs_of_every_kind_pass_the_row_count(tmp_path: Path, mode_bits):
    import numpy as np

    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)).convert(mode_bits)
    img.save(tmp_path / "ok.png")
    assert media.check_image(tmp_path / "ok.png").width == 53


def test_16_bit_png_is_scaled_to_8_bits_not_clipped(tmp_path: Path):
    import numpy as np

    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    media.check_image(tmp_path / "deep.png")
    pixels = media.load_array(tmp_path / "deep.png")
    assert pixels.dtype == np.uint8 and pixels.shape == (64, 64, 3)
    np.testing.assert_allclose(pixels[..., 0], ramp // 257, atol=1)
    assert abs(pixels.mean() - 127.5) < 1.0  # clipped, it would be about 254
    with Image.open(__import__("io").BytesIO(media.thumbnail_bytes(tmp_path / "deep.png"))) as t:
        assert abs(np.asarray(t).mean() - 127.5) < 3
