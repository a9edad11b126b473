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
