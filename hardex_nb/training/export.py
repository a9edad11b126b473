"""Exported models and the `Predictor` that runs them without a Dataset.

An export is a model file plus ``<file>.json`` with the task, label names, input size and
the file's format. All take a batch of ``(3, S, S)`` images in 0..1 (normalization is
inside the model).

- ``.onnx``: ONNX (onnxruntime runs it), classifiers and detectors.
- ``.pt2`` / ``.pt`` for a classifier: a ``torch.export`` ExportedProgram (dynamic batch).
- ``.pt`` for a detector: TorchScript. ``torch.export`` cannot capture torchvision's
  detectors (their NMS has data-dependent shapes) and ``torch.jit`` is deprecated, so
  TorchScript is kept for detectors only, for now; ONNX is the export to prefer for them.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import JobError
from ..media import letterbox_size
from .data import resized
from .models import without_training_overrides


class _DetectionOutputs(nn.Module):
    """A torchvision detector on one image returning plain tensors (boxes, labels, scores)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        if torch.jit.is_scripting():  # scripted detectors return (losses, detections)
            out = self.model([x[0]])[1][0]
        else:
            out = self.model([x[0]])[0]
        return out["boxes"], out["labels"], out["scores"]


def export_model(
    model: nn.Module,
    path: str | Path,
    *,
    task: str,
    labels: list[str],
    image_size: int,
    letterbox: bool = False,
) -> Path:
    """Write ``path`` (.onnx or .pt for TorchScript) and its ``.json`` sidecar."""
    path = Path(path)
    model = model.to("cpu").eval()
    example = torch.rand(1, 3, image_size, image_size)
    wrapped = (
        model if task == "classification" else _DetectionOutputs(without_training_overrides(model))
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    file_format = "onnx"
    if path.suffix == ".onnx":
        names = ["probs"] if task == "classification" else ["boxes", "labels", "scores"]
        head = nn.Sequential(wrapped, nn.Softmax(dim=1)) if task == "classification" else wrapped
        kwargs: dict[str, Any] = (
            {"dynamic_axes": {"images": {0: "batch"}}} if task == "classification" else {}
        )
        torch.onnx.export(
            head,
            (example,),
            str(path),
            input_names=["images"],
            output_names=names,
            opset_version=17,
            dynamo=False,
            **kwargs,
        )
    elif path.suffix in (".pt", ".pt2") and task == "classification":
        head = nn.Sequential(wrapped, nn.Softmax(dim=1))
        batch = torch.export.Dim("batch", min=1, max=4096)
        program = torch.export.export(
            head, (torch.rand(2, 3, image_size, image_size),), dynamic_shapes=({0: batch},)
        )
        torch.export.save(program, str(path))
        file_format = "torch.export"
    elif path.suffix in (".pt", ".torchscript"):
        with warnings.catch_warnings():
            # deprecated, but the one Python-free form of a torchvision detector besides ONNX
            warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", FutureWarning)
            torch.jit.script(wrapped).save(str(path))
        file_format = "torchscript"
    else:
        raise JobError(
            f"{path.name}: export to .onnx, or .pt / .pt2 (a classifier: torch.export; "
            "a detector: TorchScript, .pt)."
        )
    meta = {
        "task": task,
        "labels": labels,
        "image_size": image_size,
        "letterbox": letterbox,
        "format": file_format,
    }
    Path(f"{path}.json").write_text(json.dumps(meta, indent=2))
    return path


class Predictor:
    """Runs an exported model on images; no Dataset needed.

    >>> p = Predictor.load("model.onnx")
    >>> p.predict(["a.jpg", "b.jpg"])          # DataFrame like Run.predict
    """

    def __init__(self, path: Path, meta: dict):
        self.path, self.meta = path, meta
        self.task, self.labels, self.image_size = meta["task"], meta["labels"], meta["image_size"]
        self.letterbox = bool(meta.get("letterbox", False))
        self._module: Any = None
        self._session: Any = None
        if path.suffix == ".onnx":
            import onnxruntime as ort

            self._session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        elif meta.get("format") == "torch.export":
            self._module = torch.export.load(str(path)).module()
        else:  # TorchScript (detectors, and classifiers exported by earlier versions)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", FutureWarning)
                self._module = torch.jit.load(str(path), map_location="cpu").eval()

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        path = Path(path)
        side = Path(f"{path}.json")
        if not path.is_file() or not side.is_file():
            raise JobError(
                f"{path}: needs the model file and its {side.name} (written by run.export)."
            )
        return cls(path, json.loads(side.read_text()))

    def _run(self, x: np.ndarray):
        if self._session is not None:
            return self._session.run(None, {"images": x})
        with torch.inference_mode():
            out = self._module(torch.from_numpy(x))
        return [o.numpy() for o in out] if isinstance(out, tuple) else [out.numpy()]

    def predict(self, images, *, threshold: float = 0.5) -> pd.DataFrame:
        """One row per prediction: image, label, score (and x0..y1 for detection)."""
        images = list(images)
        rows = []
        if self.task == "classification":
            batch: list[np.ndarray] = []
            names: list[Any] = []
            for img in images:
                x, _ = resized(img, self.image_size)
                batch.append(x.float().div(255).numpy())
                names.append(str(img) if isinstance(img, (str, Path)) else len(names))
            probs = self._run(np.stack(batch).astype(np.float32))[0]
            for name, p in zip(names, probs):
                k = int(p.argmax())
                rows.append({"image": name, "label": self.labels[k], "score": float(p[k])})
            return pd.DataFrame(rows)
        for n, img in enumerate(images):
            x, (w, h) = resized(img, self.image_size, letterbox=self.letterbox)
            boxes, labels, scores = self._run(x.float().div(255).numpy()[None].astype(np.float32))
            sw, sh = (
                letterbox_size(w, h, self.image_size)
                if self.letterbox
                else (self.image_size, self.image_size)
            )
            scale = np.array([w / sw, h / sh, w / sw, h / sh])
            for b, lab, s in zip(boxes, labels, scores):
                if s >= threshold:
                    x0, y0, x1, y1 = (b * scale).tolist()
                    rows.append(
                        {
                            "image": str(img) if isinstance(img, (str, Path)) else n,
                            "label": self.labels[int(lab) - 1],
                            "x0": x0,
                            "y0": y0,
                            "x1": x1,
                            "y1": y1,
                            "score": float(s),
                        }
                    )
        return pd.DataFrame(rows, columns=["image", "label", "x0", "y0", "x1", "y1", "score"])


SDK_README = """# {name}: a {task} model exported by hardex_nb

Labels: {labels}. Input: {size}×{size} RGB{letterbox}.

Needs Python 3.9+ and three packages, not hardex_nb or torch:

    pip install onnxruntime numpy pillow

Run it on image files or folders; it prints one CSV row per prediction
(classification: image,label,score; detection: image,label,score,x0,y0,x1,y1 in the
image's own pixels, boxes scoring at least --threshold):

    python predict.py photo.jpg more_photos/ [--threshold 0.5] [--out predictions.csv]

Or from Python, in this folder: `from predict import Model; Model().predict([Path("a.jpg")])`.

## Speed, measured when exported

The model alone (images already decoded), onnxruntime {ort}, median of {repeats} runs after
{warmup} warm-up runs, on {machine}:

| device | batch | ms per batch | images per second |
| --- | --- | --- | --- |
{rows}
"""


def _timings(
    path: Path, task: str, size: int, *, repeats: int = 20, warmup: int = 3
) -> list[tuple[str, int | None, float | None, float | None]]:
    """Median milliseconds per batch of the ONNX model on each onnxruntime device here."""
    import time

    import onnxruntime as ort

    devices = [("CPU", "CPUExecutionProvider")]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        devices.append(("GPU (CUDA)", "CUDAExecutionProvider"))
    batches = (1, 16) if task == "classification" else (1,)
    rows: list[tuple[str, int | None, float | None, float | None]] = []
    for device, provider in devices:
        session = ort.InferenceSession(str(path), providers=[provider])
        for batch in batches:
            x = np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32)
            for _ in range(warmup):
                session.run(None, {"images": x})
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                session.run(None, {"images": x})
                times.append(time.perf_counter() - start)
            ms = 1000 * float(np.median(times))
            rows.append((device, batch, ms, 1000 * batch / ms))
    if len(devices) == 1:
        rows.append(("GPU", None, None, None))  # said, not hidden: none was measured
    return rows


def export_sdk(
    model: nn.Module,
    folder: str | Path,
    *,
    task: str,
    labels: list[str],
    image_size: int,
    letterbox: bool = False,
    name: str = "model",
) -> Path:
    """Write a folder a user runs elsewhere without hardex_nb: ``model.onnx``,
    ``model.json``, ``predict.py`` (onnxruntime, numpy and Pillow only; the file
    ``training/sdk_predict.py``) and a ``README.md`` with the command line and a timing
    table measured here (CPU, and the GPU when onnxruntime has CUDA)."""
    import platform
    import shutil

    import onnxruntime as ort

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = export_model(
        model,
        folder / "model.onnx",
        task=task,
        labels=labels,
        image_size=image_size,
        letterbox=letterbox,
    )
    Path(f"{onnx_path}.json").replace(folder / "model.json")
    shutil.copyfile(Path(__file__).with_name("sdk_predict.py"), folder / "predict.py")
    repeats, warmup = 20, 3
    rows = []
    for device, batch, ms, per_s in _timings(
        onnx_path, task, image_size, repeats=repeats, warmup=warmup
    ):
        if ms is None:
            rows.append(f"| {device} | | not measured: onnxruntime here has no CUDA provider | |")
        else:
            rows.append(f"| {device} | {batch} | {ms:.1f} | {per_s:.0f} |")
    machine = f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores"
    (folder / "README.md").write_text(
        SDK_README.format(
            name=name,
            task=task,
            labels=", ".join(labels),
            size=image_size,
            letterbox=" (long side fitted, top left, the rest black)" if letterbox else "",
            ort=ort.__version__,
            repeats=repeats,
            warmup=warmup,
            machine=machine,
            rows="\n".join(rows),
        )
    )
    return folder
