"""A model tied to its dataset and version: ``Run``, ``wrap_model``, ``Predictor``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import runlog
from ..annotation_rules import WHOLE_IMAGE
from ..dataset import Dataset
from ..errors import JobError
from ..geometry import axis_aligned
from ..media import EXTENSIONS
from ..training import checkpoint, engine
from ..training.data import ImageRows
from ..training.export import Predictor, export_model, export_sdk
from ..training.models import build_network

__all__ = ["Predictor", "Run", "build_network", "targets_for", "wrap_model"]


def targets_for(ds: Dataset, sample_ids: Sequence[int], labels: list[str]) -> list:
    """Class indices (classification), 0 / 1 rows (multilabel) or box targets (detection)
    of labeled samples.
    """
    index = {name: i for i, name in enumerate(labels)}
    samples = ds.sample_rows()
    if ds.task == "classification":
        return [index[lab] for lab in samples.loc[list(sample_ids), "label"]]
    ann = ds.annotation_rows()
    if ds.task == "multilabel":  # a 0 / 1 row per image, a column per label
        rows = np.zeros((len(sample_ids), len(labels)), dtype="float32")
        at = {int(sid): i for i, sid in enumerate(sample_ids)}
        tags = ann[(ann["kind"] == "tag") & ann["sample_id"].isin(list(at))]
        for sid, lab in zip(tags["sample_id"].astype(int), tags["label"]):
            rows[at[sid], index[lab]] = 1.0
        return list(rows)
    ann = axis_aligned(ann[ann["sample_id"].isin(list(sample_ids))], samples)
    groups = {int(k): g for k, g in ann.groupby("sample_id")}
    out = []
    for sid in sample_ids:
        g = groups.get(int(sid), ann.iloc[:0])
        obj = g[g["kind"] != "ignore"]
        ign = g[g["kind"] == "ignore"]
        out.append(
            {
                "boxes": obj[["x0", "y0", "x1", "y1"]].to_numpy(dtype="float32"),
                "labels": np.array([index[lab] + 1 for lab in obj["label"]], dtype="int64"),
                "ignore": ign[["x0", "y0", "x1", "y1"]].to_numpy(dtype="float32"),
            }
        )
    return out


class _CallableModel(nn.Module):
    """A user's callable seen as a module: batch of 0..1 images in, predictions out."""

    def __init__(self, fn: Callable, task: str):
        super().__init__()
        self.fn, self.task = fn, task

    def forward(self, x):
        if isinstance(x, (list, tuple)):
            x = torch.stack(list(x))
        out = self.fn(x)
        if self.task == "classification":
            out = torch.as_tensor(out, dtype=torch.float32)
            if (out >= 0).all() and torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-4):
                out = out.clamp(min=1e-12).log()  # probabilities: softmax gives them back
        elif self.task == "multilabel":
            out = torch.as_tensor(out, dtype=torch.float32)
            if (out >= 0).all() and (out <= 1).all():  # probabilities: sigmoid gives them back
                out = torch.logit(out, eps=1e-6)
        return out


class Run:
    """A trained (or wrapped) model tied to its dataset and version.

    Attributes: ``version`` ("V3"), ``dataset``, ``task``, ``labels``, ``image_size``,
    ``letterbox`` (images keep their aspect ratio in the square; detection runs),
    ``model`` (a torch module), ``device``, ``temperature`` (a classifier's calibration on
    its validation images, `hardex_nb.hard.fit_temperature`: auto-label flags hard examples
    from the tempered probabilities; 1.0 when uncalibrated), ``thresholds`` (multilabel: per
    label, the probability from which it is given, chosen on the validation images for the
    best F1; 0.5 without them).
    """

    def __init__(
        self,
        dataset: Dataset,
        version: str,
        model: nn.Module,
        *,
        labels: list[str],
        image_size: int,
        model_name: str,
        device: torch.device,
        letterbox: bool | None = None,
        temperature: float = 1.0,
        thresholds: Sequence[float] | None = None,
    ):
        self.dataset, self.version, self.model = dataset, version, model
        self.temperature = temperature
        # multilabel: a label is given when its probability is at least its threshold
        self.thresholds = np.asarray(
            thresholds if thresholds is not None else [0.5] * len(labels), dtype=float
        )
        self.task, self.labels, self.image_size = dataset.task, list(labels), image_size
        self.letterbox = self.task == "detection" if letterbox is None else letterbox
        self.model_name, self.device = model_name, device
        self.history: list[float] = []

    def __repr__(self) -> str:
        info = self.info
        rate = info.get("avg_detection_rate")
        rate_text = f", avg detection rate {rate:.3f}" if rate is not None and rate == rate else ""
        return f"<hardex_nb.Run {self.version} {self.model_name} {info.get('status')}{rate_text}>"

    @property
    def info(self) -> dict:
        """The row of ``ds.runs`` for this run, as a dict (empty when the row is gone)."""
        runs = self.dataset.runs
        row = runs[runs["version"] == self.version]
        return row.iloc[0].to_dict() if len(row) else {}

    # -- loading --------------------------------------------------------------------------
    @classmethod
    def load(cls, dataset: Dataset, version: str, *, device: str = "auto") -> Run:
        """Reload a recorded run from its weights file."""
        runs = dataset.runs
        row = runs[runs["version"] == version]
        if row.empty:
            raise JobError(f"no run {version!r} in this dataset; see ds.runs.version.")
        row = row.iloc[0]
        if not isinstance(row["weights_path"], str):
            raise JobError(f"run {version} has no weights file (status {row['status']}).")
        state, cfg = checkpoint.load(dataset.path / row["weights_path"])
        net = build_network(cfg["model"], dataset.task, len(cfg["labels"]), cfg["image_size"], None)
        net.load_state_dict(state)
        dev = engine.resolve_device(device)
        # runs saved before letterboxing stretched their images to the square
        return cls(
            dataset,
            version,
            net.to(dev).eval(),
            labels=cfg["labels"],
            image_size=cfg["image_size"],
            model_name=cfg["model"],
            device=dev,
            letterbox=cfg.get("letterbox", False),
            temperature=cfg.get("temperature", 1.0),
            thresholds=cfg.get("thresholds"),
        )

    # -- inference ------------------------------------------------------------------------
    def _rows(self, images) -> tuple[ImageRows, list, list]:
        """Images from sample ids, paths, a folder, PIL images or arrays; ``ImageRows``
        already read (a job's several passes over the same images) are used as they are.
        """
        if isinstance(images, ImageRows):
            return images, [None] * len(images), list(range(len(images)))
        if isinstance(images, (str, Path)) and Path(images).is_dir():
            images = sorted(p for p in Path(images).rglob("*") if p.suffix.lower() in EXTENSIONS)
        elif isinstance(images, (str, Path, int, np.integer)):
            images = [images]
        elif isinstance(images, pd.DataFrame):
            images = images["sample_id"].tolist()
        items = list(images)
        sample_ids: list = []
        sources: list = []
        for item in items:
            if isinstance(item, (int, np.integer)):
                sample_ids.append(int(item))
                sources.append(self.dataset.image_path(int(item)))
            else:
                sample_ids.append(None)
                sources.append(item)
        names = [str(s) if isinstance(s, (str, Path)) else i for i, s in enumerate(sources)]
        return (
            ImageRows(sources, self.image_size, task=self.task, letterbox=self.letterbox),
            sample_ids,
            names,
        )

    def predict_proba(self, images, *, batch_size: int = 32, flip: bool = False) -> np.ndarray:
        """Classification: ``(N, K)`` class probabilities, columns in ``run.labels`` order
        (multilabel: each label's own probability).
        """
        if self.task == "detection":
            raise JobError("predict_proba is for classification runs; use predict.")
        data, _, _ = self._rows(images)
        return np.asarray(
            engine.predict(
                self.model,
                data,
                task=self.task,
                device=self.device,
                batch_size=batch_size,
                flip=flip,
            )
        )

    def predict_raw(self, images, *, batch_size: int = 8, flip: bool = False) -> list[dict]:
        """Detection: per image ``boxes (K, 4)``, ``labels (K,)`` 0-based, ``scores (K,)``,
        every box the model keeps (no score threshold).
        """
        data, _, _ = self._rows(images)
        return engine.predict(
            self.model, data, task=self.task, device=self.device, batch_size=batch_size, flip=flip
        )

    def predict(
        self,
        images_or_sample_ids,
        *,
        threshold: float = 0.5,
        batch_size: int = 16,
        progress: str | None = None,
    ) -> pd.DataFrame:
        """One row per prediction with its score.

        Classification: sample_id, image, label, score (one row per image, whatever the
        threshold). Multilabel: a row per label given (its probability at least the run's
        threshold for it; ``threshold`` is not used), an image given none has no row.
        Detection: sample_id, image, label, x0, y0, x1, y1, score for boxes
        scoring at least ``threshold``; coordinates in the image's own pixels.
        """
        data, sids, names = self._rows(images_or_sample_ids)
        out: Any = engine.predict(
            self.model,
            data,
            task=self.task,
            device=self.device,
            batch_size=batch_size,
            progress=progress,
        )
        if self.task == "multilabel":
            out = np.asarray(out).reshape(-1, len(self.labels))
            hit_rows, cols = np.nonzero(out >= self.thresholds[None, :])
            frame = pd.DataFrame(
                {
                    "sample_id": pd.array([sids[r] for r in hit_rows], dtype="Int64"),
                    "image": [names[r] for r in hit_rows],
                    "label": [self.labels[c] for c in cols],
                    "score": out[hit_rows, cols],
                }
            )
            return frame
        if self.task == "classification":
            k = out.argmax(axis=1) if len(out) else np.zeros(0, dtype=int)
            return pd.DataFrame(
                {
                    "sample_id": pd.array(sids, dtype="Int64"),
                    "image": names,
                    "label": [self.labels[i] for i in k],
                    "score": out[np.arange(len(k)), k] if len(k) else [],
                }
            )
        rows = []
        for sid, name, r in zip(sids, names, out):
            keep = r["scores"] >= threshold
            for b, lab, s in zip(r["boxes"][keep], r["labels"][keep], r["scores"][keep]):
                rows.append((sid, name, self.labels[int(lab)], *b.tolist(), float(s)))
        frame = pd.DataFrame(
            rows, columns=["sample_id", "image", "label", "x0", "y0", "x1", "y1", "score"]
        )
        frame["sample_id"] = pd.array(frame["sample_id"], dtype="Int64")
        return frame

    def predict_tiled(
        self,
        images_or_sample_ids,
        rows: int,
        cols: int,
        *,
        threshold: float = 0.5,
        iou_threshold: float = 0.5,
    ) -> pd.DataFrame:
        """Detection on large images: predict each tile of a rows×cols grid (the grid
        ``hardex_nb.tile`` uses for training), map boxes back to the full image, join
        parts cut by a seam and remove duplicates with per-label NMS.
        """
        from .. import tiling
        from ..media import load_rgb

        if self.task != "detection":
            raise JobError("predict_tiled is for detection runs.")
        _, sids, names = self._rows(images_or_sample_ids)
        sources = [self.dataset.image_path(s) if s is not None else n for s, n in zip(sids, names)]
        frames = []
        for sid, name, source in zip(sids, names, sources):
            merged = tiling.predict_tiled(
                lambda crops: self.predict(crops, threshold=threshold),
                load_rgb(source),
                rows,
                cols,
                iou_threshold=iou_threshold,
            )
            merged.insert(0, "image", name)
            merged.insert(0, "sample_id", sid)
            frames.append(merged)
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        out["sample_id"] = pd.array(out["sample_id"], dtype="Int64")
        return out

    def views(
        self, images, *, batch_size: int = 16, progress: str | None = None, backend: str = "local"
    ) -> tuple:
        """``(plain, flipped, features)`` from one read of each image: predictions (as
        `predict_proba` / `predict_raw`), predictions on the mirror images, and
        ``(N, D)`` features (``(N, 0)`` for a model that shows none).

        ``backend="ray"``: computed on Ray Data, one model copy per GPU (or CPU) actor, on the
        running Ray cluster or a local one (``pip install hardex_nb[ray]``; see
        ``training.ray_views``).
        """
        if backend == "ray":
            from ..training import ray_views

            data, _, _ = self._rows(images)
            if not all(isinstance(p, (str, Path)) for p in data.images):
                raise JobError("backend='ray' reads image files: give sample ids or paths.")
            return ray_views.views(
                self.model,
                data.images,
                task=self.task,
                image_size=self.image_size,
                letterbox=self.letterbox,
                batch_size=batch_size,
            )
        if backend != "local":
            raise JobError(f"backend={backend!r}: use 'local' or 'ray'.")
        data, _, _ = self._rows(images)
        plain, flipped, feats = engine.predict_views(
            self.model,
            data,
            task=self.task,
            device=self.device,
            batch_size=batch_size,
            plain=True,
            flip=True,
            features=True,
            progress=progress,
        )
        if feats is None:
            feats = np.zeros((len(data), 0), dtype=np.float32)
        return plain, flipped, feats

    def embed(self, images, *, batch_size: int = 32) -> np.ndarray:
        """``(N, D)`` image features from the model (see ``training.engine.embed``)."""
        data, _, _ = self._rows(images)
        return engine.embed(
            self.model, data, task=self.task, device=self.device, batch_size=batch_size
        )

    def to(self, device: str | torch.device) -> Run:
        """Move the model to another device (``"cpu"``, ``"cuda"``, ``"auto"``)."""
        self.device = engine.resolve_device(device)
        self.model.to(self.device)
        return self

    def _exportable(self) -> None:
        if isinstance(self.model, _CallableModel):
            raise JobError("a wrapped callable cannot be exported; export your own model.")
        if self.task == "multilabel":
            raise JobError(
                "exports (ONNX, TorchScript, the SDK folder) carry one class per image and "
                "cannot say which labels a multi-label model gives; use run.predict here, or "
                "torch.save(run.model) and apply run.thresholds to its sigmoid."
            )

    def export(self, path: str | Path) -> Path:
        """Write the model as ONNX (``.onnx``) or TorchScript (``.pt``) for
        `Predictor`.
        """
        self._exportable()
        path = export_model(
            self.model,
            path,
            task=self.task,
            labels=self.labels,
            image_size=self.image_size,
            letterbox=self.letterbox,
        )
        self.model.to(self.device)
        return path

    def export_sdk(self, folder: str | Path) -> Path:
        """A folder to run this model elsewhere without hardex_nb or torch: ``model.onnx``,
        ``model.json``, a self-contained ``predict.py`` (onnxruntime, numpy, Pillow) and a
        ``README.md`` with its command line and a timing table measured on this machine.
        """
        self._exportable()
        out = export_sdk(
            self.model,
            folder,
            task=self.task,
            labels=self.labels,
            image_size=self.image_size,
            letterbox=self.letterbox,
            name=f"{self.version} {self.model_name}",
        )
        self.model.to(self.device)
        return out


def _check_model_output(module: nn.Module, task: str, n_labels: int, image_size: int) -> None:
    """Call the model once on a blank image and refuse an answer of the wrong kind, before a
    run is recorded or any image is read.
    """
    need = (
        f"(N, {n_labels}) logits or probabilities, one column per label"
        if task in WHOLE_IMAGE
        else "a list of dicts with boxes (K, 4), labels (K,) and scores (K,) per image"
    )
    try:
        with torch.inference_mode():
            out = module(torch.zeros(1, 3, image_size, image_size))
    except Exception as exc:
        raise JobError(
            f"wrap_model: the model failed on a blank {image_size}×{image_size} "
            f"batch ({type(exc).__name__}: {exc}); a {task} dataset needs {need}."
        ) from exc
    if task in WHOLE_IMAGE:
        ok = isinstance(out, torch.Tensor) and out.ndim == 2 and tuple(out.shape) == (1, n_labels)
    else:
        ok = (
            isinstance(out, (list, tuple))
            and len(out) == 1
            and isinstance(out[0], dict)
            and {"boxes", "labels", "scores"} <= set(out[0])
        )
    got = (
        f"a tensor of shape {tuple(out.shape)}"
        if isinstance(out, torch.Tensor)
        else type(out).__name__
    )
    if not ok:
        raise JobError(
            f"wrap_model: the model returned {got}, but this is a {task} dataset: it "
            f"needs {need}. Wrap a model of the dataset's kind."
        )


def wrap_model(
    ds: Dataset, model: nn.Module | Callable, *, image_size: int, name: str = "custom"
) -> Run:
    """Use your own model or callable for pre-labeling, recorded as a run ``Vn``.

    ``model`` takes a float batch ``(N, 3, S, S)`` of 0..1 images (S = ``image_size``).
    Classification: it returns ``(N, K)`` logits or probabilities over ``ds.label_names``
    (multilabel: each label's logit, or its probability when every value is in 0..1).
    Detection: a list of dicts with ``boxes (K, 4)`` in input pixels, ``labels (K,)`` with
    1 = the first label (0 is background, as in torchvision) and ``scores (K,)``.
    """
    # a detector module already speaks torchvision; classifiers may return probabilities
    module = (
        model
        if isinstance(model, nn.Module) and ds.task == "detection"
        else _CallableModel(model, ds.task)
    )
    _check_model_output(module.eval(), ds.task, len(ds.label_names), image_size)
    version = runlog.start_run(ds, model=name, params={"wrapped": True, "image_size": image_size})
    runlog.finish_run(ds, version, status="succeeded", message="wrapped user model")
    return Run(
        ds,
        version,
        module.eval(),
        labels=ds.label_names,
        image_size=image_size,
        model_name=name,
        device=torch.device("cpu"),
    )
