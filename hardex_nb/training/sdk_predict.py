"""Run an exported hardex_nb model on images: onnxruntime, numpy and Pillow only.

This file is copied as ``predict.py`` into the folder `Run.export_sdk` writes, beside
``model.onnx`` and ``model.json`` (task, labels, input size). It reads images the way the
model was trained to see them (upright by EXIF orientation, 8-bit RGB, JPEGs decoded at a
reduced scale, resized bilinearly to the square: stretched, or with ``letterbox`` fitted at
the top left) and prints one CSV row per prediction::

    python predict.py photo.jpg folder/ [--threshold 0.5] [--out predictions.csv]

Classification rows: ``image,label,score``. Detection rows: ``image,label,score,x0,y0,x1,y1``
in the image's own pixels.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def load(path: Path, size: int, letterbox: bool) -> tuple[np.ndarray, tuple[int, int]]:
    """``(3, size, size)`` float32 in 0..1 and the upright ``(width, height)``."""
    with Image.open(path) as opened:
        img: Image.Image = opened
        width, height = img.size
        if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # turned by 90° or 270°
            width, height = height, width
        img.draft("RGB", (size, size))
        try:
            img = ImageOps.exif_transpose(img)
        except (OSError, ValueError, SyntaxError):
            pass
        if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            wide = np.asarray(img, dtype=np.uint32)
            divisor = 257 if img.mode != "I" or wide.max(initial=0) > 255 else 1
            img = Image.fromarray((wide // divisor).clip(0, 255).astype(np.uint8), mode="L")
        img = img.convert("RGB")
    if letterbox:
        scale = size / max(img.size)
        w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
        pixels = np.zeros((size, size, 3), dtype=np.uint8)
        pixels[:h, :w] = np.asarray(img.resize((w, h), Image.Resampling.BILINEAR))
    else:
        pixels = np.asarray(img.resize((size, size), Image.Resampling.BILINEAR))
    return pixels.transpose(2, 0, 1).astype(np.float32) / 255.0, (width, height)


class Model:
    """``model.onnx`` with its ``model.json``."""

    def __init__(self, folder: Path = HERE, providers: list[str] | None = None):
        self.meta = json.loads((folder / "model.json").read_text())
        self.size, self.labels = self.meta["image_size"], self.meta["labels"]
        self.letterbox = bool(self.meta.get("letterbox", False))
        self.session = ort.InferenceSession(
            str(folder / "model.onnx"), providers=providers or ["CPUExecutionProvider"]
        )

    def predict(self, paths: list[Path], threshold: float = 0.5) -> list[dict]:
        rows: list[dict] = []
        if self.meta["task"] == "classification":
            for start in range(0, len(paths), 16):
                part = paths[start : start + 16]
                batch = np.stack([load(p, self.size, False)[0] for p in part])
                (probs,) = self.session.run(None, {"images": batch})
                for path, p in zip(part, probs):
                    k = int(p.argmax())
                    rows.append({"image": str(path), "label": self.labels[k], "score": float(p[k])})
            return rows
        for path in paths:
            x, (width, height) = load(path, self.size, self.letterbox)
            boxes, labels, scores = self.session.run(None, {"images": x[None]})
            if self.letterbox:
                scale = self.size / max(width, height)
                sw, sh = max(1, round(width * scale)), max(1, round(height * scale))
            else:
                sw = sh = self.size
            factor = np.array([width / sw, height / sh, width / sw, height / sh])
            for box, label, score in zip(boxes, labels, scores):
                if score >= threshold:
                    x0, y0, x1, y1 = (box * factor).tolist()
                    rows.append(
                        {
                            "image": str(path),
                            "label": self.labels[int(label) - 1],
                            "score": float(score),
                            "x0": x0,
                            "y0": y0,
                            "x1": x1,
                            "y1": y1,
                        }
                    )
        return rows


def images(args: list[str]) -> list[Path]:
    found: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in EXTENSIONS)
        elif path.is_file():
            found.append(path)
        else:
            sys.exit(f"predict.py: {arg}: no such file or folder")
    return found


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", nargs="+", help="image files or folders")
    ap.add_argument("--threshold", type=float, default=0.5, help="detection: lowest score")
    ap.add_argument("--out", help="write the CSV here instead of printing it")
    args = ap.parse_args(argv)
    model = Model()
    rows = model.predict(images(args.images), args.threshold)
    fields = ["image", "label", "score"]
    if model.meta["task"] == "detection":
        fields += ["x0", "y0", "x1", "y1"]
    out = open(args.out, "w", newline="") if args.out else sys.stdout
    try:
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if args.out:
            out.close()


if __name__ == "__main__":
    main()
