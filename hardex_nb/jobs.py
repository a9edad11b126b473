"""Long tasks on a Dataset: train, predict, auto-label, collect, evaluate.

``train`` records each run in ``ds.runs`` as V1, V2, ... with its status (running,
succeeded, failed, cancelled), times, image and label counts, average detection rate,
parameters and weights file. Interrupting the cell cancels the run cleanly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from . import hard
from .dataset import Dataset
from .errors import JobError
from .formats.common import polygon_area
from .geometry import axis_aligned
from .progress import LivePlot
from .training import engine, models
from .training.data import ImageRows, Normalize
from .training.export import Predictor, export_model

__all__ = [
    "AutoLabelResult",
    "MislabelResult",
    "Predictor",
    "Run",
    "auto_label",
    "collect",
    "evaluate",
    "find_mislabels",
    "plot_runs",
    "train",
    "wrap_model",
]


def _targets_for(ds: Dataset, sample_ids: Sequence[int], labels: list[str]) -> list:
    """Class indices (classification) or box targets (detection) of labeled samples."""
    index = {name: i for i, name in enumerate(labels)}
    samples = ds._samples.merged()
    if ds.task == "classification":
        return [index[lab] for lab in samples.loc[list(sample_ids), "label"]]
    ann = ds._annotations.merged()
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
        return out


class Run:
    """A trained (or wrapped) model tied to its dataset and version.

    Attributes: ``version`` ("V3"), ``dataset``, ``task``, ``labels``, ``image_size``,
    ``letterbox`` (images keep their aspect ratio in the square; detection runs),
    ``model`` (a torch module), ``device``.
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
    ):
        self.dataset, self.version, self.model = dataset, version, model
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
        saved = torch.load(
            dataset.path / row["weights_path"], map_location="cpu", weights_only=False
        )
        cfg = saved["config"]
        net = _build(cfg["model"], dataset.task, len(cfg["labels"]), cfg["image_size"], None)
        net.load_state_dict(saved["state_dict"])
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
        )

    # -- inference ------------------------------------------------------------------------
    def _rows(self, images) -> tuple[ImageRows, list, list]:
        """Images from sample ids, paths, a folder, PIL images or arrays; ``ImageRows``
        already read (a job's several passes over the same images) are used as they are."""
        if isinstance(images, ImageRows):
            return images, [None] * len(images), list(range(len(images)))
        if isinstance(images, (str, Path)) and Path(images).is_dir():
            images = sorted(
                p
                for p in Path(images).rglob("*")
                if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp")
            )
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
        """Classification: ``(N, K)`` class probabilities, columns in ``run.labels`` order."""
        if self.task != "classification":
            raise JobError("predict_proba is for classification runs; use predict.")
        data, _, _ = self._rows(images)
        return engine.predict(
            self.model, data, task=self.task, device=self.device, batch_size=batch_size, flip=flip
        )

    def predict_raw(self, images, *, batch_size: int = 8, flip: bool = False) -> list[dict]:
        """Detection: per image ``boxes (K, 4)``, ``labels (K,)`` 0-based, ``scores (K,)``,
        every box the model keeps (no score threshold)."""
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
        threshold). Detection: sample_id, image, label, x0, y0, x1, y1, score for boxes
        scoring at least ``threshold``; coordinates in the image's own pixels.
        """
        data, sids, names = self._rows(images_or_sample_ids)
        out = engine.predict(
            self.model,
            data,
            task=self.task,
            device=self.device,
            batch_size=batch_size,
            progress=progress,
        )
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
        parts cut by a seam and remove duplicates with per-label NMS."""
        from . import tiling
        from .media import load_rgb

        if self.task != "detection":
            raise JobError("predict_tiled is for detection runs.")
        _, sids, names = self._rows(images_or_sample_ids)
        sources = [self.dataset.image_path(s) if s is not None else n for s, n in zip(sids, names)]
        frames = []
        for sid, name, source in zip(sids, names, sources):
            image = load_rgb(source)
            windows = tiling.tile_windows(image.width, image.height, rows, cols)
            crops = [image.crop(w[2:]) for w in windows]
            pred = self.predict(crops, threshold=threshold)
            parts = []
            for k, w in enumerate(windows):
                p = pred[pred["image"] == k][["label", "x0", "y0", "x1", "y1", "score"]].copy()
                p[["x0", "x1"]] += w[2]
                p[["y0", "y1"]] += w[3]
                parts.append(p)
            boxes = pd.concat(parts, ignore_index=True)
            seams_x = sorted({w[2] for w in windows} - {0})
            seams_y = sorted({w[3] for w in windows} - {0})
            merged = tiling.untile(
                boxes, seams_x=seams_x, seams_y=seams_y, iou_threshold=iou_threshold
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
        :meth:`predict_proba` / :meth:`predict_raw`), predictions on the mirror images, and
        ``(N, D)`` features (``(N, 0)`` for a model that shows none).

        ``backend="ray"``: computed on Ray Data, one model copy per GPU (or CPU) actor, on the
        running Ray cluster or a local one (``pip install hardex_nb[ray]``; see
        ``training.ray_views``)."""
        if backend == "ray":
            from .training import ray_views

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

    def export(self, path: str | Path) -> Path:
        """Write the model as ONNX (``.onnx``) or TorchScript (``.pt``) for
        :class:`Predictor`."""
        if isinstance(self.model, _CallableModel):
            raise JobError("a wrapped callable cannot be exported; export your own model.")
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


def _build(
    name: str, task: str, num_classes: int, image_size: int, weights, weights_backbone=None
) -> nn.Module:
    net = models.build_model(
        name,
        task=task,
        num_classes=num_classes,
        image_size=image_size,
        weights=weights,
        weights_backbone=weights_backbone,
    )
    return nn.Sequential(Normalize(), net) if task == "classification" else net


def _split(ds: Dataset, labeled: list[int], val_fraction: float, seed: int):
    samples = ds._samples.merged().loc[labeled]
    val = samples.index[samples["split"] == "val"].tolist()
    train = samples.index[samples["split"] == "train"].tolist()
    if not val and len(train) >= 10 and val_fraction > 0:
        rng = np.random.default_rng(seed)
        chosen = set(
            rng.choice(train, size=max(1, int(len(train) * val_fraction)), replace=False).tolist()
        )
        val = [i for i in train if i in chosen]
        train = [i for i in train if i not in chosen]
    return train, val


def _avg_detection_rate(run: Run, val: list[int]) -> tuple[float | None, str]:
    """Mean over labels of the share of validation objects (or images) found correctly, and
    a note. Not computed (None) unless every label has at least one validation image: a mean
    over the labels that happen to be there would be noise."""
    if not val:
        return None, "no validation images: the average detection rate is not available"
    ds = run.dataset
    if run.task == "classification":
        present = set(ds.samples.set_index("sample_id").loc[val, "label"].astype(str))
    else:
        ann = ds.annotations
        present = set(
            ann.loc[ann["sample_id"].isin(val) & (ann["kind"] != "ignore"), "label"].astype(str)
        )
    absent = [name for name in run.labels if name not in present]
    if absent:
        return None, (
            f"label(s) {absent} have no validation image: the average detection rate "
            "is not available (label more images, or put some in the 'val' split)"
        )
    rate = _report_on(ds, run, val, progress=None).avg_detection_rate
    return (
        0.0 if np.isnan(rate) else rate
    ), f"average detection rate on {len(val)} validation images"


def train(
    ds: Dataset,
    *,
    model: str | None = None,
    epochs: int = 10,
    batch_size: int = 16,
    image_size: int | None = None,
    device: str = "auto",
    mode: str = "fast",
    test: bool = False,
    lr: float | None = None,
    seed: int = 0,
    weights: str | Path | None = "auto",
    weights_backbone: str | None = "auto",
    val_fraction: float = 0.2,
    pseudo_threshold: float = 0.9,
    hard_weight: float = 2.0,
    augment: str | Callable = "weak",
    progress: bool = True,
) -> Run:
    """Train a torchvision model on the labeled images; the run is recorded as ``Vn``.

    Parameters
    ----------
    model : str
        A name from ``training.models.CLASSIFIERS`` / ``DETECTORS`` (default resnet18 /
        fasterrcnn_resnet18_fpn).
    weights : str or path
        Where the model starts: ``"auto"`` (default: torchvision's default pretrained weights
        when their file is in the torch hub cache, else from scratch; never downloads),
        ``None`` (from scratch), a torchvision weights name (``"DEFAULT"``,
        ``"IMAGENET1K_V1"``, ...; downloaded into the cache when missing and online; a
        detector's COCO weights get new class layers), or a local state_dict file.
    weights_backbone : str
        Detectors: the backbone's ImageNet weights (``"auto"``, ``"DEFAULT"`` or ``None``);
        the heads start from scratch. A one-line note says where the weights came from.
    image_size : int
        Default: the size the pretrained weights were trained at (224 for ImageNet
        classifiers); 64 for a classifier from scratch; 256 for a detector. Images are
        resized to a square of this side.
    mode : {"fast", "accurate"}
        "fast" trains on labeled images only. "accurate" trains on them for half the epochs,
        then adds unlabeled images as pseudo-labeled examples: a prediction is kept when its
        confidence is at least ``pseudo_threshold`` and the mirrored image gives the same
        answer (same class, or a same-label box with IoU ≥ 0.5); kept images are trained on
        with strong augmentation (flip, brightness, contrast). Pseudo-labels are recomputed
        every epoch and never written to the dataset.
    test : bool
        Also predict the ``test`` split and store the results (``ds.predictions(version)``).
    augment : {"weak", "strong", "none"} or callable
        Augmentation of the labeled images, from ``torchvision.transforms.v2`` (see
        ``training.data.augmentation``): "weak" (default) flips; "strong" adds colour jitter
        and a random resized crop (classification) or zoom-out scale jitter (detection). Or
        your own v2 transform, called per image with ``(image, target)``, boxes as
        ``tv_tensors.BoundingBoxes``; it must keep the image size.
    hard_weight : float
        Hard examples feed training: a labeled image flagged hard (a hard example a person
        reviewed: confirmed or fixed) is seen ``round(hard_weight)`` times per epoch instead
        of once (2 by default; 1 turns the rule off). The count is in the run's record.
    val_fraction : float
        Share of labeled train images held out to compute the average detection rate when
        no image is in the ``val`` split (only with 10 or more labeled images).

    Launched by ``torchrun`` (the ``hardex train`` command, README "Several GPUs or
    machines"), every process trains its share of each epoch under
    ``DistributedDataParallel``; the first process alone records the run, saves the weights
    and evaluates; ``world_size`` is in the run's params.
    """
    rank, size = engine.join_launch()
    ds._sync()
    if mode not in ("fast", "accurate"):
        raise JobError(f"mode={mode!r}: use 'fast' or 'accurate'.")
    if epochs < 1 or batch_size < 1:
        raise JobError("epochs and batch_size must be at least 1.")
    if not callable(augment) and augment not in ("weak", "strong", "none"):
        raise JobError(
            f"augment={augment!r}: use 'weak', 'strong', 'none' or a "
            "torchvision.transforms.v2 transform."
        )
    name = model or models.DEFAULTS[ds.task]
    weights, weights_backbone = models.resolve_auto(
        name, task=ds.task, weights=weights, weights_backbone=weights_backbone
    )
    note = models.pretrained_note(
        name, task=ds.task, weights=weights, weights_backbone=weights_backbone
    )
    progress = progress and rank == 0
    if progress:
        print(note)
    image_size = image_size or models.default_image_size(name, task=ds.task, weights=weights)
    samples = ds._samples.merged()
    labeled = samples.index[
        (samples["status"] == "labeled") & (samples["split"] != "test")
    ].tolist()
    labels = ds.label_names
    if len(labeled) < 2 or not labels:
        raise JobError(
            f"training needs labeled images: {len(labeled)} labeled (outside the test "
            f"split) and labels {labels}. Label some images first."
        )
    if ds.task == "detection" and not models.honors_ignore(name):
        ann = ds._annotations.merged()
        if (ann["kind"] == "ignore").any():
            raise JobError(
                f"{name} cannot exclude ignore regions from its loss; use a "
                "fasterrcnn_* or retinanet_* model, or delete the ignore regions."
            )
    lr = lr or (1e-3 if ds.task == "classification" else 2e-4)
    dev = engine.resolve_device(device)
    params = dict(
        model=name,
        epochs=epochs,
        batch_size=batch_size,
        image_size=image_size,
        device=str(dev),
        mode=mode,
        test=test,
        lr=lr,
        seed=seed,
        weights=str(weights) if weights else None,
        weights_backbone=str(weights_backbone) if weights_backbone else None,
        starting_point=note,
        val_fraction=val_fraction,
        hard_weight=hard_weight,
        augment=augment if isinstance(augment, str) else repr(augment),
        world_size=size,
    )
    version = ds._start_run(model=name, params=params) if rank == 0 else None
    if size > 1:  # the first process names the run; the others train under that name
        shared = [version]
        torch.distributed.broadcast_object_list(shared, src=0)
        version = shared[0]
    engine.seed_everything(seed)
    train_ids, val_ids = _split(ds, labeled, val_fraction, seed)
    try:
        net = _build(name, ds.task, len(labels), image_size, weights, weights_backbone).to(dev)
        run = Run(
            ds, version, net, labels=labels, image_size=image_size, model_name=name, device=dev
        )
        data = ImageRows(
            [ds.image_path(i) for i in train_ids],
            image_size,
            task=ds.task,
            targets=_targets_for(ds, train_ids, labels),
        )
        times = max(1, round(hard_weight))
        flagged = samples.loc[train_ids, "hard"].astype(bool).to_numpy() & (times > 1)
        repeats = np.where(flagged, times, 1)
        opts = engine.FitOptions(
            task=ds.task,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            device=dev,
            seed=seed,
            augment=augment,
            repeats=repeats.tolist() if flagged.any() else None,
        )
        bar = tqdm(total=epochs, desc=f"{version} {name}", unit="epoch", disable=not progress)
        plot = LivePlot(f"{version} {name}", enabled=progress)

        def on_epoch(epoch: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            plot.update(loss)

        extra = None
        pseudo_counts: list[int] = []
        if mode == "accurate":
            unlabeled = samples.index[samples["status"] == "unlabeled"].tolist()
            extra = _pseudo_batches(
                run, unlabeled, epochs, batch_size, pseudo_threshold, pseudo_counts
            )
        try:
            run.history = engine.fit(net, data, opts, on_epoch=on_epoch, extra_batches=extra)
        finally:
            bar.close()
        if rank != 0:
            return run
        weights_rel = Path("runs") / version / "model.pt"
        (ds.path / weights_rel).parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "state_dict": net.state_dict(),
                "config": {
                    "model": name,
                    "labels": labels,
                    "image_size": image_size,
                    "task": ds.task,
                    "letterbox": run.letterbox,
                },
            },
            ds.path / weights_rel,
        )
        rate, rate_note = _avg_detection_rate(run, val_ids)
        if test:
            _store_test_predictions(run)
        ds._finish_run(
            version,
            status="succeeded",
            avg_detection_rate=rate,
            weights_path=weights_rel.as_posix(),
            message=json.dumps(
                {
                    "loss": run.history,
                    "val_images": len(val_ids),
                    "avg_detection_rate": rate_note,
                    "hard_examples_oversampled": int(flagged.sum()),
                    "steps_per_epoch": opts.steps_per_epoch,
                    "pseudo_labeled": pseudo_counts,
                }
            ),
        )
        return run
    except KeyboardInterrupt:
        if rank == 0:
            ds._finish_run(version, status="cancelled", message="interrupted by the user")
        raise
    except engine.Diverged as exc:
        if rank == 0:
            ds._finish_run(version, status="failed", message=str(exc))
        raise JobError(
            f"run {version} failed: {exc}. Lower the learning rate (lr={lr}) or check "
            "the labels; the dataset is unchanged."
        ) from exc
    except torch.OutOfMemoryError as exc:
        if rank == 0:
            ds._finish_run(version, status="failed", message="out of memory")
        raise JobError(
            f"run {version} failed: out of memory on {dev}. Lower batch_size "
            f"({batch_size}) or image_size ({image_size}); the dataset is "
            "unchanged."
        ) from exc
    except BaseException as exc:
        if rank == 0:
            ds._finish_run(version, status="failed", message=f"{type(exc).__name__}: {exc}")
        raise


def _pseudo_batches(
    run: Run,
    unlabeled: list[int],
    epochs: int,
    batch_size: int,
    threshold: float,
    counts: list[int],
) -> Callable[[int], list]:
    """Per epoch (second half only): confident, flip-consistent predictions on unlabeled
    images as strongly augmented training batches."""
    import torchvision

    ds = run.dataset
    pool = ImageRows(
        [ds.image_path(i) for i in unlabeled],
        run.image_size,
        task=run.task,
        letterbox=run.letterbox,
    )

    def batches(epoch: int) -> list:
        if epoch < epochs // 2 or not unlabeled:
            return []
        was_training = run.model.training
        plain, flipped, _ = engine.predict_views(
            run.model, pool, task=run.task, device=run.device, flip=True
        )
        run.model.train(was_training)
        keep, targets = [], []
        if run.task == "classification":
            k1, k2 = plain.argmax(1), flipped.argmax(1)
            for i in np.flatnonzero((plain.max(1) >= threshold) & (k1 == k2)):
                keep.append(int(i))
                targets.append(int(k1[i]))
        else:
            for i, (a, b) in enumerate(zip(plain, flipped)):
                conf = a["scores"] >= threshold
                if not conf.any() or not len(b["boxes"]):
                    continue
                iou = torchvision.ops.box_iou(
                    torch.as_tensor(a["boxes"][conf]), torch.as_tensor(b["boxes"])
                ).numpy()
                same = a["labels"][conf][:, None] == b["labels"][None, :]
                ok = ((iou >= 0.5) & same).any(axis=1)
                if ok.all():  # every confident box is confirmed by the mirrored view
                    keep.append(i)
                    targets.append({"boxes": a["boxes"][conf], "labels": a["labels"][conf] + 1})
        counts.append(len(keep))
        if not keep:
            return []
        return [
            engine.Batch(
                pool,
                keep[s : s + batch_size],
                [
                    pool.scaled_target(i, t)
                    for i, t in zip(keep[s : s + batch_size], targets[s : s + batch_size])
                ],
                "strong",
            )
            for s in range(0, len(keep), batch_size)
        ]

    return batches


def _store_test_predictions(run: Run) -> None:
    ds = run.dataset
    samples = ds._samples.merged()
    test_ids = samples.index[samples["split"] == "test"].tolist()
    if not test_ids:
        return
    pred = run.predict(test_ids, threshold=0.05)
    ds._store_predictions(run.version, pred)


def _check_model_output(module: nn.Module, task: str, n_labels: int, image_size: int) -> None:
    """Call the model once on a blank image and refuse an answer of the wrong kind, before a
    run is recorded or any image is read."""
    need = (
        f"(N, {n_labels}) logits or probabilities, one column per label"
        if task == "classification"
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
    if task == "classification":
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
    Classification: it returns ``(N, K)`` logits or probabilities over ``ds.label_names``.
    Detection: a list of dicts with ``boxes (K, 4)`` in input pixels, ``labels (K,)`` with
    1 = the first label (0 is background, as in torchvision) and ``scores (K,)``.
    """
    # a detector module already speaks torchvision; classifiers may return probabilities
    is_detector = isinstance(model, nn.Module) and ds.task == "detection"
    module = model if is_detector else _CallableModel(model, ds.task)
    _check_model_output(module.eval(), ds.task, len(ds.label_names), image_size)
    version = ds._start_run(model=name, params={"wrapped": True, "image_size": image_size})
    ds._finish_run(version, status="succeeded", message="wrapped user model")
    return Run(
        ds,
        version,
        module.eval(),
        labels=ds.label_names,
        image_size=image_size,
        model_name=name,
        device=torch.device("cpu"),
    )


# -- auto-labeling and hard examples --------------------------------------------------------
class AutoLabelResult:
    """What an auto-label or collect job wrote: ``sample_ids`` predicted, ``hard_ids``
    flagged hard, ``annotations`` (new ann_ids, detection), the per-sample ``table``, and
    ``skipped``: samples a person labeled, confirmed or deleted (or whose predicted label was
    deleted) while the job ran; the person's edit was kept and the job's result dropped."""

    def __init__(self, sample_ids, hard_ids, annotations, table: pd.DataFrame, *, skipped=()):
        self.sample_ids, self.hard_ids = list(sample_ids), list(hard_ids)
        self.annotations, self.table = list(annotations), table
        self.skipped = list(skipped)
        self.run: Run | None = None  # the model used (auto_label trains one when not given)

    def __repr__(self) -> str:
        kept = (
            f", {len(self.skipped)} skipped: edited by a person meanwhile" if self.skipped else ""
        )
        return (
            f"<AutoLabelResult: {len(self.sample_ids)} images to confirm, "
            f"{len(self.hard_ids)} hard, {len(self.annotations)} boxes{kept}>"
        )


def _check_prerequisites(ds: Dataset) -> list[int]:
    samples = ds._samples.merged()
    labeled = samples[samples["status"] == "labeled"]
    if ds.task == "classification":
        per_label = labeled["label"].value_counts()
    else:
        ann = ds._annotations.merged()
        ann = ann[ann["sample_id"].isin(labeled.index) & (ann["kind"] != "ignore")]
        per_label = ann.groupby("label")["sample_id"].nunique()
    enough = per_label[per_label >= 5]
    if len(enough) < 2:
        counts = {k: int(v) for k, v in per_label.items()}
        raise JobError(
            f"auto-labeling needs at least 2 labels with 5 or more labeled images each; "
            f"labeled images per label: {counts or 'none'}. Label more images first."
        )
    unlabeled = samples.index[samples["status"] == "unlabeled"].tolist()
    if not unlabeled:
        raise JobError(
            "auto-labeling needs unlabeled images; every image is labeled or waiting "
            "for confirmation. Add images with ds.add_images(...)."
        )
    return unlabeled


def _training_reference(run: Run, train_images: list | None = None):
    """Embeddings, class indices and sizes of the images the run was trained on."""
    ds = run.dataset
    if train_images is None:
        samples = ds._samples.merged()
        ids = samples.index[
            (samples["status"] == "labeled") & (samples["split"] != "test")
        ].tolist()
        paths = [ds.image_path(i) for i in ids]
        sizes = samples.loc[ids, ["width", "height"]].to_numpy(dtype=float)
        targets = _targets_for(ds, ids, run.labels)
    else:
        from .media import upright_size

        paths = list(train_images)
        sizes = [upright_size(p) for p in paths]
        sizes = np.asarray(sizes, dtype=float)
        targets = None
    emb = run.embed(paths) if paths else np.zeros((0, 0))
    if targets is None:  # a manifest gives images: the run's own predictions are their classes
        classes = _main_class(run, paths)
    elif run.task == "classification":
        classes = np.asarray(targets)
    else:
        classes = np.array(
            [np.bincount(t["labels"] - 1).argmax() if len(t["labels"]) else 0 for t in targets]
        )
    return emb, classes, sizes


def _main_class(run: Run, images) -> np.ndarray:
    if run.task == "classification":
        return _top_classes(run.task, run.predict_proba(images))
    return _top_classes(run.task, run.predict_raw(images))


def _top_classes(task: str, outputs) -> np.ndarray:
    """``(N,)`` class index per image: the most probable class, or the label of the
    highest-scoring box (0 when there is none)."""
    if task == "classification":
        return outputs.argmax(axis=1)
    return np.array(
        [int(r["labels"][np.argmax(r["scores"])]) if len(r["scores"]) else 0 for r in outputs],
        dtype=np.int64,
    )


def _hardness(
    run: Run,
    images,
    sizes: np.ndarray,
    *,
    threshold: float,
    reference=None,
    progress: str | None = None,
    backend: str = "local",
):
    """Predictions and hard flags for images (paths or sample ids).

    Returns (per-image DataFrame with label, hard, hard_score, hard_reasons; list of box
    rows per image for detection; embeddings).
    """
    # one pass over the images gives predictions, mirrored predictions and features: each
    # image is decoded once (in memory or streamed), and the job works on what it read even
    # if a sample is deleted meanwhile
    plain, flipped, emb = run.views(images, progress=progress, backend=backend)
    if run.task == "classification":
        probs = plain
        table = hard.classification_hardness(probs, tta_probs=flipped[None])
        predicted = _top_classes(run.task, probs)
        table["label"] = [run.labels[k] for k in predicted]
        boxes_per_image = [[] for _ in range(len(probs))]
    else:
        raw = plain
        boxes, table = hard.detection_hardness(raw, [flipped], threshold=threshold)
        table["label"] = None
        boxes_per_image = [[] for _ in range(len(raw))]
        for row in boxes.itertuples(index=False):
            boxes_per_image[row.image].append(row)
        predicted = _top_classes(run.task, raw)
    if reference is not None and len(reference[0]) >= 2:
        ref_emb, ref_classes, ref_sizes = reference
        # the distance reasons (2, 3) need features; a wrapped callable shows none
        dist = (
            hard.training_distance(ref_emb, ref_classes, emb, predicted)["reasons"]
            if emb.shape[1] and ref_emb.shape[1]
            else [""] * len(table)
        )
        res = hard.resolution_outliers(ref_sizes, sizes)
        res_codes = [hard.encode_reasons([hard.Reason.RESOLUTION]) if r else "" for r in res]
        table["reasons"] = hard.merge_reasons(table["reasons"], dist, res_codes)
        table["hard"] = table["reasons"] != ""
    return table, boxes_per_image, emb


def _box_rows(run: Run, boxes, width: float, height: float, *, with_hard: bool) -> list[dict]:
    rows = []
    for b in boxes:
        x0, x1 = np.clip([b.x0, b.x1], 0, width)
        y0, y1 = np.clip([b.y0, b.y1], 0, height)
        if x1 <= x0 or y1 <= y0:
            continue
        hard_type = b.hard_type if with_hard else "none"
        if not with_hard and b.hard_type == "missed":
            continue  # pre-labeling writes what the model sees above the threshold
        rows.append(
            dict(
                kind="box",
                label=run.labels[int(b.label)],
                x0=float(x0),
                y0=float(y0),
                x1=float(x1),
                y1=float(y1),
                score=float(b.score),
                origin=run.version,
                hard_type=hard_type,
                points=None,
                angle=None,
                text=None,
            )
        )
    return rows


def auto_label(
    ds: Dataset,
    run: Run | None = None,
    *,
    mode: str = "active",
    algorithm: str | None = None,
    threshold: float = 0.5,
    batch_size: int = 32,
    progress: bool = True,
    backend: str = "local",
    **train_options,
) -> AutoLabelResult:
    """Predict every unlabeled image and put it in ``to_confirm``, flagging hard examples.

    Prerequisites, each refused with its own message: at least 2 labels with 5 or more
    labeled images each, unlabeled images, and no other auto-label job on this dataset.

    ``run``: the model to label with. Without one, a model is trained first
    (:func:`train` with ``train_options``) by the chosen ``algorithm``: ``"fast"`` (the
    labeled images only; the default) or ``"accurate"`` (semi-supervised: confident,
    flip-consistent pseudo-labels on the unlabeled images join training halfway; the run's
    record counts them). The run used is ``result.run``.

    ``mode="active"`` flags hard examples (scores, reasons, per-box false_positive/missed);
    ``mode="prelabel"`` only writes predictions. Predictions are annotations with
    ``origin`` = the run's version (detection) or the sample's label (classification).
    Everything is written in one transaction; image embeddings are kept for
    :meth:`Dataset.similar_to`. ``backend="ray"`` runs the model passes on Ray Data (see
    :meth:`Run.views`).
    """
    if mode not in ("active", "prelabel"):
        raise JobError(f"mode={mode!r}: use 'active' or 'prelabel'.")
    if algorithm not in (None, "fast", "accurate"):
        raise JobError(f"algorithm={algorithm!r}: use 'fast' or 'accurate'.")
    if run is None:
        _check_prerequisites(ds)  # refused before any training
        run = train(ds, mode=algorithm or "fast", progress=progress, **train_options)
    elif algorithm is not None or train_options:
        raise JobError(
            "algorithm= and training options apply when auto_label trains the "
            "model itself; pass run=None, or train with hx.train(..., mode=...)."
        )
    if run.dataset is not ds and Path(run.dataset.path).resolve() != Path(ds.path).resolve():
        raise JobError("this run belongs to another dataset; use hx.collect for other images.")
    ds._sync()
    unlabeled = _check_prerequisites(ds)
    ds._claim_job("auto_label")
    try:
        samples = ds._samples.merged()
        sizes = samples.loc[unlabeled, ["width", "height"]].to_numpy(dtype=float)
        reference = _training_reference(run) if mode == "active" else None
        table, boxes, emb = _hardness(
            run,
            unlabeled,
            sizes,
            threshold=threshold,
            progress=f"auto-label {run.version}" if progress else None,
            reference=reference,
            backend=backend,
        )
        active = mode == "active"
        updates = pd.DataFrame(
            {
                "status": "to_confirm",
                "hard": table["hard"].astype(int).to_numpy() if active else 0,
                "hard_score": table["score"].to_numpy() if active else None,
                "hard_reasons": table["reasons"].to_numpy() if active else "",
            },
            index=pd.Index(unlabeled),
        )
        if ds.task == "classification":
            updates["label"] = table["label"].to_numpy()
        ann_rows = []
        for sid, (w, h), per_image in zip(unlabeled, sizes, boxes):
            for row in _box_rows(run, per_image, w, h, with_hard=active):
                ann_rows.append(row | {"sample_id": sid})
        ann = pd.DataFrame(ann_rows) if ann_rows else None
        skipped: list[int] = []
        _, ann_ids = ds._insert_rows(
            annotations=ann,
            sample_updates=updates,
            only_unlabeled=True,
            skipped=skipped,
            embeddings=(run.version, unlabeled, emb) if emb.shape[1] else None,
        )
    finally:
        ds._release_job("auto_label")
    table.insert(0, "sample_id", unlabeled)
    table["written"] = ~table["sample_id"].isin(skipped)
    written = [s for s in unlabeled if s not in set(skipped)]
    hard_ids = [
        s for s, h, w in zip(unlabeled, table["hard"], table["written"]) if h and w and active
    ]
    result = AutoLabelResult(written, hard_ids, ann_ids, table, skipped=skipped)
    result.run = run
    return result


def _read_manifest_sources(path: str | Path) -> list[Path]:
    path = Path(path)
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            src = json.loads(line)["source"]
        except (json.JSONDecodeError, KeyError, TypeError):
            from .errors import FormatError

            raise FormatError(
                f"{path.name}: line {n}: needs a JSON object with a 'source' field."
            ) from None
        p = Path(src[len("file://") :] if src.startswith("file://") else src)
        out.append(p if p.is_absolute() else path.parent / p)
    return out


def collect(
    run: Run,
    images,
    *,
    into: Dataset,
    train_manifest: str | Path | None = None,
    filter_hard: bool = True,
    threshold: float = 0.5,
    progress: bool = True,
    backend: str = "local",
):
    """Run batch-inference images (folder, list or .zip) through ``run`` and keep the hard
    examples in ``into`` as ``to_confirm`` with their predictions and reasons.

    ``train_manifest``: a manifest of the images the model was trained on, for the
    distance-to-training reasons (2, 3, 5); default: the run's own labeled images. With
    ``filter_hard=False`` every image is only added to ``into`` as unlabeled.
    Returns ``(ImportReport, AutoLabelResult | None)``.
    """
    import contextlib

    from .dataset import ImportReport

    if into.task != run.task:
        raise JobError(f"into is a {into.task} dataset but run {run.version} is {run.task}.")
    missing = [n for n in run.labels if n not in into.label_names]
    if missing:
        raise JobError(f"into lacks the run's labels {missing}; add them with into.add_label.")
    if not filter_hard:
        return into.add_images(images, origin="collect"), None
    report = ImportReport()
    with contextlib.ExitStack() as stack:
        infos = Dataset._check_files(Dataset._gather_files(images, stack, True), report)
        if not infos:
            reasons = "; ".join(f"{n}: {r}" for n, r in report.rejected[:5]) or "no image found"
            raise JobError(
                f"collect: the batch holds no usable image ({reasons}); nothing was "
                "added. Pass a folder, list or .zip of JPG/PNG/BMP images."
            )
        sizes = np.array([(i.width, i.height) for i in infos], dtype=float)
        train_images = _read_manifest_sources(train_manifest) if train_manifest else None
        reference = _training_reference(run, train_images)
        table, boxes, _ = _hardness(
            run,
            [i.path for i in infos],
            sizes,
            threshold=threshold,
            progress=f"collect {run.version}" if progress else None,
            backend=backend,
            reference=reference,
        )
        keep = np.flatnonzero(table["hard"].to_numpy())
        # name the rows before anything is written, so that nothing can fail after the write
        table = table.drop(columns="image", errors="ignore")
        table.insert(0, "image", [i.path.name for i in infos])
        extra, anns = [], []
        for i in keep:
            row = {
                "status": "to_confirm",
                "hard": 1,
                "hard_score": float(table["score"].iat[i]),
                "hard_reasons": table["reasons"].iat[i],
            }
            if run.task == "classification":
                row["label"] = table["label"].iat[i]
            extra.append(row)
            anns.append(_box_rows(run, boxes[i], *sizes[i], with_hard=True))
        report.added = into._insert_images(
            [infos[i] for i in keep], copy=True, origin="collect", extra=extra, annotations=anns
        )
    return report, AutoLabelResult(report.added, report.added, [], table)


# -- evaluation ---------------------------------------------------------------------------------
def _evaluation_ids(ds: Dataset, split: str | None) -> tuple[list[int], str]:
    """Labeled sample ids of ``split`` (default: test, else val, else train) and the split."""
    samples = ds._samples.merged()
    labeled = samples[samples["status"] == "labeled"]
    if split is None:
        split = next((c for c in ("test", "val") if (labeled["split"] == c).any()), "train")
    elif split not in ("train", "val", "test", "all"):
        raise JobError(f"split={split!r}: use 'test', 'val', 'train' or 'all'.")
    if split != "all":
        labeled = labeled[labeled["split"] == split]
    return labeled.index.tolist(), split


def evaluate(
    ds: Dataset,
    run: Run,
    *,
    split: str | None = None,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.3,
    progress: bool = True,
):
    """Report on the labeled images of ``split`` (default: test, else val, else train).

    Detection: :class:`~hardex_nb.evaluation.DetectionReport`, equal to COCOeval (ignore
    regions are crowd regions covering every label, difficult boxes are ignored ground truth,
    a polygon's area is its own); classification:
    :class:`~hardex_nb.evaluation.ClassificationReport`. Image ids are sample ids. The
    header names the model version, the confidence threshold (0.3 by default, as in the
    platform manual), the average detection rate and the images evaluated on. When no test
    or val image is labeled, the report falls back to the training images, warns, and says
    so in its header: those numbers flatter the model.
    """
    import warnings

    ds._sync()
    ids, used = _evaluation_ids(ds, split)
    if not ids:
        raise JobError(
            f"no labeled images in split {used!r} to evaluate on; label some, move "
            "some to 'test' with ds.set_split(ids, 'test'), or choose another split."
        )
    report = _report_on(
        ds,
        run,
        ids,
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
        progress=f"evaluate {run.version}" if progress else None,
    )
    seen = used in ("train", "all")
    report.evaluated_on = f"{len(ids)} {used} images"
    if seen:
        note = (
            f"evaluated on {len(ids)} images the model may have trained on ({used} split): "
            "these numbers overstate it. Label images into the 'test' split "
            "(ds.set_split(ids, 'test')) and train again for an honest report."
        )
        report.notes.append(note)
        if split is None:
            warnings.warn(
                f"hx.evaluate: no labeled test or val images; {note}", UserWarning, stacklevel=2
            )
    report.dataset = ds  # for the report widgets
    return report


def _report_on(
    ds: Dataset,
    run: Run,
    ids: list[int],
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.3,
    progress: str | None = None,
):
    """The run's predictions on the labeled samples ``ids`` against their labels."""
    from .evaluation import evaluate_classification, evaluate_detections

    samples = ds._samples.merged()
    if ds.task == "classification":
        truth = samples.loc[ids, "label"].astype(str).tolist()
        pred = run.predict(ids, progress=progress)["label"].tolist()
        report = evaluate_classification(truth, pred, label_names=run.labels, image_ids=ids)
    else:
        ann = ds._annotations.merged()
        ann = ann[
            ann["sample_id"].isin(ids) & ann["kind"].isin(["box", "polygon", "text", "ignore"])
        ]
        ann = axis_aligned(ann, samples)
        area = [
            (polygon_area(json.loads(p)) if k == "polygon" and isinstance(p, str) else np.nan)
            for k, p in zip(ann["kind"], ann["points"])
        ]
        gt = pd.DataFrame(
            {
                "image_id": ann["sample_id"].astype("int64").to_numpy(),
                "label": ann["label"].where(ann["kind"] != "ignore", None).to_numpy(),
                "x0": ann["x0"].astype(float).to_numpy(),
                "y0": ann["y0"].astype(float).to_numpy(),
                "x1": ann["x1"].astype(float).to_numpy(),
                "y1": ann["y1"].astype(float).to_numpy(),
                "iscrowd": (ann["kind"] == "ignore").to_numpy(),
                "ignore": ann["difficult"].fillna(0).astype(bool).to_numpy(),
                "area": area,
            }
        )
        pred = run.predict(ids, threshold=0.01, progress=progress).rename(
            columns={"sample_id": "image_id"}
        )
        report = evaluate_detections(
            gt,
            pred.drop(columns=["image"]).astype({"image_id": "int64"}),
            iou_threshold=iou_threshold,
            score_threshold=score_threshold,
            image_ids=ids,
            labels=run.labels,
        )
    report.version = run.version
    return report


def plot_runs(ds: Dataset, *, last: int = 10):
    """Average detection rate and duration of the last ``last`` runs (matplotlib Figure)."""
    import matplotlib.pyplot as plt

    runs = ds.runs
    runs = runs[runs["status"] == "succeeded"].tail(last)
    fig, ax = plt.subplots(figsize=(6, 3))
    if runs.empty:
        ax.text(0.5, 0.5, "no finished runs yet", ha="center", va="center")
        ax.set_axis_off()
        return fig
    x = np.arange(len(runs))
    ax.plot(
        x,
        runs["avg_detection_rate"].astype(float),
        marker="o",
        color="tab:blue",
        label="avg detection rate",
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("avg detection rate")
    ax.set_xticks(x, runs["version"])
    ax2 = ax.twinx()
    ax2.bar(x, runs["duration"].astype(float), alpha=0.25, color="tab:gray", label="duration (s)")
    ax2.set_ylabel("duration (s)")
    ax.set_title(f"last {len(runs)} runs")
    fig.tight_layout()
    plt.close(fig)
    return fig


@dataclass
class MislabelResult:
    """What :func:`find_mislabels` found: ``table`` (one row per labeled image: sample_id,
    label, predicted, score, flagged, out-of-sample probabilities per label), ``flagged``
    ids written for review, and ``skipped`` ids a person changed while it ran."""

    table: pd.DataFrame
    flagged: list[int]
    skipped: list[int]

    def __repr__(self) -> str:
        return (
            f"MislabelResult: {len(self.flagged)} of {len(self.table)} labeled images "
            f"flagged as suspected mislabels (reason {hard.SUSPECTED_MISLABEL}), "
            f"{len(self.skipped)} skipped"
        )


def _folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold number per sample, stratified: each class is spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        fold[members] = (np.arange(len(members)) + offset) % k
        offset += len(members)
    return fold


def find_mislabels(
    ds: Dataset,
    *,
    folds: int = 5,
    model: str | None = None,
    epochs: int = 10,
    batch_size: int = 16,
    image_size: int | None = None,
    lr: float | None = None,
    weights: str | Path | None = "auto",
    threshold: float = 0.5,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
) -> MislabelResult:
    """Flag labeled images whose label looks wrong, from out-of-sample probabilities.

    The labeled images (classification) are split into ``folds`` stratified folds; for each
    fold a model (the same recipe as :func:`train`) is trained on the other folds and
    predicts the held-out fold, so every image is scored by a model that never saw it.
    The mislabel score is confident learning's (``hard.mislabel_scores``: per-class
    thresholds on self-confidence). Images scoring at least ``threshold`` get reason 101
    (suspected mislabel), their score as ``hard_score``, and go to ``to_confirm`` for
    review; a person's label is never changed. Images a person relabeled or confirmed while
    this ran are skipped. The fold models are not recorded as runs.
    """
    if ds.task != "classification":
        raise JobError(
            "find_mislabels is for classification datasets; for detection, "
            "auto_label flags false positives and missed objects per box."
        )
    samples = ds.samples
    labeled = samples[(samples["status"] == "labeled") & samples["label"].notna()]
    labels = ds.label_names
    counts = labeled["label"].value_counts()
    if folds < 2 or len(labeled) < 2 * folds or (counts > 0).sum() < 2:
        raise JobError(
            f"find_mislabels needs at least {2 * folds} labeled images over 2 or "
            f"more labels for {folds} folds; found {len(labeled)} over "
            f"{int((counts > 0).sum())}. Label more images or use fewer folds."
        )
    name = model or models.DEFAULTS["classification"]
    weights, _ = models.resolve_auto(name, task="classification", weights=weights)
    size = image_size or models.default_image_size(name, task="classification", weights=weights)
    dev = engine.resolve_device(device)
    ids = labeled["sample_id"].astype(int).tolist()
    given = np.array([labels.index(str(v)) for v in labeled["label"]])
    fold = _folds(given, folds, seed)
    probs = np.zeros((len(ids), len(labels)))
    paths = [ds.image_path(i) for i in ids]
    for k in tqdm(range(folds), desc="folds", unit="fold", disable=not progress):
        train_idx, held = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        engine.seed_everything(seed + k)
        net = _build(name, "classification", len(labels), size, weights).to(dev)
        data = ImageRows(
            [paths[i] for i in train_idx],
            size,
            task="classification",
            targets=given[train_idx].tolist(),
        )
        opts = engine.FitOptions(
            task="classification",
            epochs=epochs,
            batch_size=batch_size,
            lr=lr or 1e-3,
            device=dev,
            seed=seed + k,
        )
        engine.fit(net, data, opts)
        probs[held] = engine.predict(
            net,
            ImageRows([paths[i] for i in held], size, task="classification"),
            task="classification",
            device=dev,
        )
    score = hard.mislabel_scores(given, probs)
    table = pd.DataFrame(
        {
            "sample_id": ids,
            "label": [labels[g] for g in given],
            "predicted": [labels[p] for p in probs.argmax(1)],
            "score": score,
            "flagged": score >= threshold,
        }
    )
    for j, label in enumerate(labels):
        table[f"p_{label}"] = probs[:, j]
    chosen = table[table["flagged"]].set_index("sample_id")
    skipped = (
        ds.flag_for_review(chosen["label"], reason=hard.SUSPECTED_MISLABEL, scores=chosen["score"])
        if len(chosen)
        else []
    )
    flagged = [i for i in chosen.index.tolist() if i not in set(skipped)]
    return MislabelResult(table, flagged, skipped)
