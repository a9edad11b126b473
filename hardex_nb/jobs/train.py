"""Training on a dataset: each run recorded in ``ds.runs`` as V1, V2, ... with its status
(running, succeeded, failed, cancelled), times, image and label counts, average detection
rate, parameters and weights file. Interrupting the cell cancels the run cleanly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import hard, runlog
from ..annotation_rules import WHOLE_IMAGE
from ..dataset import Dataset
from ..errors import JobError
from ..evaluation import f1_thresholds
from ..progress import LivePlot
from ..training import checkpoint, engine, models
from ..training.data import ImageRows
from .report import report_on
from .run import Run, build_network, targets_for


def _split(ds: Dataset, labeled: list[int], val_fraction: float, seed: int):
    samples = ds.sample_rows().loc[labeled]
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


@dataclass
class Recipe:
    """How a model is built and fitted on a dataset's labeled images: `train` and the
    fold models of `find_mislabels` use the same one (model, starting weights, image
    size, learning rate, augmentation, hard-example repeats).
    """

    task: str
    model: str
    weights: Any
    weights_backbone: Any
    image_size: int
    lr: float
    augment: str | Callable = "weak"
    hard_weight: float = 2.0

    @classmethod
    def of(
        cls,
        task: str,
        *,
        model: str | None = None,
        weights: Any = "auto",
        weights_backbone: Any = "auto",
        image_size: int | None = None,
        lr: float | None = None,
        augment: str | Callable = "weak",
        hard_weight: float = 2.0,
    ) -> Recipe:
        """The recipe with every default resolved (``"auto"`` weights from the cache, the
        weights' image size, the task's learning rate).
        """
        if not callable(augment) and augment not in ("weak", "strong", "none"):
            raise JobError(
                f"augment={augment!r}: use 'weak', 'strong', 'none' or a "
                "torchvision.transforms.v2 transform."
            )
        name = model or models.DEFAULTS[task]
        weights, weights_backbone = models.resolve_auto(
            name, task=task, weights=weights, weights_backbone=weights_backbone
        )
        return cls(
            task=task,
            model=name,
            weights=weights,
            weights_backbone=weights_backbone,
            image_size=image_size or models.default_image_size(name, task=task, weights=weights),
            lr=lr or (1e-3 if task in WHOLE_IMAGE else 2e-4),
            augment=augment,
            hard_weight=hard_weight,
        )

    @property
    def note(self) -> str:
        """Where the weights come from, in one line."""
        return models.pretrained_note(
            self.model,
            task=self.task,
            weights=self.weights,
            weights_backbone=self.weights_backbone,
        )

    def network(self, n_labels: int, device: torch.device) -> torch.nn.Module:
        """The torchvision network these options describe, for ``n_labels`` labels."""
        return build_network(
            self.model, self.task, n_labels, self.image_size, self.weights, self.weights_backbone
        ).to(device)

    def options(
        self, *, epochs: int, batch_size: int, device: torch.device, seed: int, hard=None
    ) -> engine.FitOptions:
        """Fit options; ``hard`` (one flag per training image) repeats the hard examples
        ``round(hard_weight)`` times per epoch.
        """
        times = max(1, round(self.hard_weight))
        flagged = np.asarray(hard if hard is not None else [], dtype=bool) & (times > 1)
        return engine.FitOptions(
            task=self.task,
            epochs=epochs,
            batch_size=batch_size,
            lr=self.lr,
            device=device,
            seed=seed,
            augment=self.augment,
            repeats=np.where(flagged, times, 1).tolist() if flagged.any() else None,
        )


def _avg_detection_rate(run: Run, val: list[int]) -> tuple[float | None, dict]:
    """The validation objects (or images) found correctly / all counted, pooled over labels
    (the manual's average detection rate), and what it rests on: its 95% interval
    (Agresti–Coull, `evaluation.rate_interval`: 4 right of 4 is 1.00 with an interval down
    to 0.70, not a certainty), the number of validation images and a note (labels that
    have no validation image are named: the rate is over the others). None only without
    validation images.
    """
    if not val:
        return None, {
            "note": "no validation images: the average detection rate is not available",
            "val_images": 0,
        }
    ds = run.dataset
    if run.task == "classification":
        present = set(ds.samples.set_index("sample_id").loc[val, "label"].astype(str))
    elif run.task == "multilabel":
        present = {
            name for names in ds.samples.set_index("sample_id").loc[val, "labels"] for name in names
        }
    else:
        ann = ds.annotations
        present = set(
            ann.loc[ann["sample_id"].isin(val) & (ann["kind"] != "ignore"), "label"].astype(str)
        )
    absent = [name for name in run.labels if name not in present]
    report = report_on(ds, run, val, progress=None)[0]
    rate, spread = report.avg_detection_rate, report.rate_interval()
    if np.isnan(rate):  # nothing to find in the validation images
        rate, spread = 0.0, float("nan")
    low = high = None
    if not np.isnan(spread):
        low, high = max(0.0, rate - spread), min(1.0, rate + spread)
    note = f"average detection rate {rate:.2f}"
    if low is not None:
        note += f" (95%: {low:.2f}–{high:.2f})"
    note += f" on {len(val)} validation images"
    if absent:
        note += (
            f"; label(s) {absent} have no validation image, so it counts the others (label "
            "more images, or put some in the 'val' split)"
        )
    return rate, {"note": note, "val_images": len(val), "interval": [low, high]}


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
    weights_backbone: str | Path | None = "auto",
    val_fraction: float = 0.2,
    pseudo_threshold: float = 0.9,
    hard_weight: float = 2.0,
    augment: str | Callable = "weak",
    progress: bool = True,
    on_epoch: Callable[[int, int, float], None] | None = None,
    cancel: threading.Event | None = None,
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
        "fast" trains on labeled images only. "accurate" also learns from the unlabeled
        images outside the test split (never written to the dataset):

        - classifiers: FixMatch (`training.engine.Consistency`): every step adds 3 unlabeled
          images per labeled one, and the class the model gives a flipped view with at least
          ``pseudo_threshold`` confidence is what it learns to give a RandAugment + cut-out
          view; an epoch shows every unlabeled image once (up to 16 per labeled image), so
          it costs about that many labeled epochs. On held-out digits with 80 labels, 5
          seeds: 0.940 ± 0.008 accuracy against fast's 0.774 ± 0.021 (0.834 on 3 seeds
          when fast trains as many steps);
        - detectors: after half the epochs, confident predictions (at least
          ``pseudo_threshold``) that the mirrored image confirms (a same-label box with IoU
          ≥ 0.5) join training as pseudo-labeled images, strongly augmented, recomputed
          every epoch, at most one per labeled image.
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
    on_epoch : callable, optional
        Called after each epoch with ``(epoch, epochs, loss)`` (epoch counts from 1).
    cancel : threading.Event, optional
        Set it (from another thread: the widgets' Train button) to stop before the next
        step; the run is recorded ``cancelled`` and ``KeyboardInterrupt`` is raised, as when
        the cell is interrupted.

    Notes
    -----
    Launched by ``torchrun`` (the ``hardex train`` command; docs: "Several GPUs,
    several machines, Ray"), every process trains its share of each epoch under
    ``DistributedDataParallel``; the first process alone records the run, saves the weights
    and evaluates; ``world_size`` is in the run's params.
    """
    rank, size = engine.join_launch()
    ds.refresh()
    if mode not in ("fast", "accurate"):
        raise JobError(f"mode={mode!r}: use 'fast' or 'accurate'.")
    if mode == "accurate" and ds.task == "multilabel":
        raise JobError(
            "mode='accurate' (learning from unlabeled images) is built for one label per "
            "image or for boxes, not for multilabel datasets; train with mode='fast'."
        )
    if epochs < 1 or batch_size < 1:
        raise JobError("epochs and batch_size must be at least 1.")
    if not 0 <= val_fraction < 1:
        raise JobError(
            f"val_fraction={val_fraction}: give a share of the labeled images from 0 "
            "(no validation images) to below 1 (0.2 by default)."
        )
    recipe = Recipe.of(
        ds.task,
        model=model,
        weights=weights,
        weights_backbone=weights_backbone,
        image_size=image_size,
        lr=lr,
        augment=augment,
        hard_weight=hard_weight,
    )
    name, weights, weights_backbone = recipe.model, recipe.weights, recipe.weights_backbone
    image_size, lr, note = recipe.image_size, recipe.lr, recipe.note
    progress = progress and rank == 0
    if progress:
        print(note)
    samples = ds.sample_rows()
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
        ann = ds.annotation_rows()
        if (ann["kind"] == "ignore").any():
            raise JobError(
                f"{name} cannot exclude ignore regions from its loss; use a "
                "fasterrcnn_* or retinanet_* model, or delete the ignore regions."
            )
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
    version = runlog.start_run(ds, model=name, params=params) if rank == 0 else ""
    if size > 1:  # the first process names the run; the others train under that name
        shared = [version]
        torch.distributed.broadcast_object_list(shared, src=0)
        version = str(shared[0])
    explain = (
        (
            engine.Diverged,
            str,
            lambda exc: (
                f"run {version} failed: {exc}. Lower the learning rate (lr={lr}) or "
                "check the labels; the dataset is unchanged."
            ),
        ),
        (
            torch.OutOfMemoryError,
            lambda exc: "out of memory",
            lambda exc: (
                f"run {version} failed: out of memory on {dev}. Lower batch_size "
                f"({batch_size}) or image_size ({image_size}); the dataset is unchanged."
            ),
        ),
    )
    with runlog.recorded(ds, version, enabled=rank == 0, explain=explain):
        engine.seed_everything(seed)
        train_ids, val_ids = _split(ds, labeled, val_fraction, seed)
        net = recipe.network(len(labels), dev)
        run = Run(
            ds, version, net, labels=labels, image_size=image_size, model_name=name, device=dev
        )
        data = ImageRows(
            [ds.image_path(i) for i in train_ids],
            image_size,
            task=ds.task,
            targets=targets_for(ds, train_ids, labels),
        )
        opts = recipe.options(
            epochs=epochs,
            batch_size=batch_size,
            device=dev,
            seed=seed,
            hard=samples.loc[train_ids, "hard"].astype(bool).to_numpy(),
        )
        opts.cancel = cancel
        bar = tqdm(total=epochs, desc=f"{version} {name}", unit="epoch", disable=not progress)
        plot = LivePlot(f"{version} {name}", enabled=progress)

        def epoch_done(epoch: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            plot.update(loss)
            if on_epoch is not None:
                on_epoch(epoch + 1, epochs, loss)

        extra = None
        consistency = None
        pseudo_counts: list[int] = []
        unlabeled = samples.index[
            (samples["status"] == "unlabeled") & (samples["split"] != "test")
        ].tolist()  # never the test split: held-out images stay unseen
        if mode == "accurate" and ds.task == "classification" and unlabeled:
            consistency = engine.Consistency(
                ImageRows([ds.image_path(i) for i in unlabeled], image_size, task=ds.task),
                threshold=pseudo_threshold,
                limit=UNLABELED_PER_LABELED * len(train_ids),
            )
        elif mode == "accurate":
            limit = PSEUDO_RATIO * len(train_ids)
            opts.extra_per_epoch = -(-min(limit, len(unlabeled)) // batch_size)
            extra = _pseudo_batches(
                run, unlabeled, epochs, batch_size, pseudo_threshold, pseudo_counts, limit
            )
        try:
            run.history = engine.fit(
                net, data, opts, on_epoch=epoch_done, extra_batches=extra, consistency=consistency
            )
        finally:
            bar.close()
        if rank != 0:
            return run
        if ds.task == "classification" and val_ids:
            truth = ds.sample_rows().loc[val_ids, "label"].map(labels.index)
            run.temperature = hard.fit_temperature(run.predict_proba(val_ids), truth)
        if ds.task == "multilabel" and val_ids:
            run.thresholds = f1_thresholds(
                np.stack(targets_for(ds, val_ids, labels)), run.predict_proba(val_ids)
            )
        weights_rel = Path("runs") / version / "model.pt"
        checkpoint.save(
            ds.path / weights_rel,
            net,
            {
                "model": name,
                "labels": labels,
                "image_size": image_size,
                "task": ds.task,
                "letterbox": run.letterbox,
                "temperature": run.temperature,
                "thresholds": run.thresholds.tolist() if ds.task == "multilabel" else None,
            },
        )
        rate, rate_info = _avg_detection_rate(run, val_ids)
        if test:
            _store_test_predictions(run)
        runlog.finish_run(
            ds,
            version,
            status="succeeded",
            avg_detection_rate=rate,
            weights_path=weights_rel.as_posix(),
            message=json.dumps(
                {
                    "loss": run.history,
                    "val_images": len(val_ids),
                    "avg_detection_rate": rate_info["note"],
                    "avg_detection_rate_interval": rate_info.get("interval", [None, None]),
                    "hard_examples_oversampled": int(sum(r > 1 for r in opts.repeats or [])),
                    "steps_per_epoch": opts.steps_per_epoch,
                    "temperature": run.temperature,
                    "pseudo_labeled": consistency.kept if consistency else pseudo_counts,
                }
            ),
        )
        return run


# unlabeled images per labeled training image an epoch of FixMatch shows, at most (a pool
# far larger than the labeled set costs that many times a labeled epoch, not more)
UNLABELED_PER_LABELED = 16

# pseudo-labeled images per labeled training image and epoch, at most (FixMatch's mu, kept
# small: a pool far larger than the labeled set must not drown what a person labeled)
PSEUDO_RATIO = 1


def _pseudo_batches(
    run: Run,
    unlabeled: list[int],
    epochs: int,
    batch_size: int,
    threshold: float,
    counts: list[int],
    limit: int,
) -> Callable[[int], list]:
    """Per epoch (second half only): confident, flip-consistent predictions on unlabeled
    images as strongly augmented training batches, at most ``limit`` images, spread over
    the classes (a class the model over-predicts cannot take the whole budget: without that
    balance a half-trained model's favourite class fed itself until every image was that
    class).
    """
    import torchvision

    ds = run.dataset
    pool = ImageRows(
        [ds.image_path(i) for i in unlabeled],
        run.image_size,
        task=run.task,
        letterbox=run.letterbox,
    )

    def batches(epoch: int) -> list:
        if epoch < epochs // 2 or not unlabeled or limit < 1:
            return []
        was_training = run.model.training
        plain, flipped, _ = engine.predict_views(
            run.model, pool, task=run.task, device=run.device, flip=True
        )
        run.model.train(was_training)
        keep: list[int] = []
        targets: list[Any] = []
        if run.task == "classification":
            k1, k2 = plain.argmax(1), flipped.argmax(1)
            conf = plain.max(1)
            ok = (conf >= threshold) & (k1 == k2)
            per_class = -(-limit // max(plain.shape[1], 1))
            for k in range(plain.shape[1]):
                rows = np.flatnonzero(ok & (k1 == k))
                rows = rows[np.argsort(-conf[rows], kind="stable")][:per_class]
                keep += rows.tolist()
                targets += [k] * len(rows)
            surest = np.argsort(-conf[keep], kind="stable")[:limit]
            keep, targets = [keep[j] for j in surest], [targets[j] for j in surest]
        else:
            found: list[tuple[float, int, dict]] = []
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
                    target = {"boxes": a["boxes"][conf], "labels": a["labels"][conf] + 1}
                    found.append((float(a["scores"][conf].min()), i, target))
            found.sort(key=lambda f: -f[0])  # the surest images first
            keep = [i for _, i, _ in found[:limit]]
            targets = [t for _, _, t in found[:limit]]
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
    samples = ds.sample_rows()
    test_ids = samples.index[samples["split"] == "test"].tolist()
    if not test_ids:
        return
    pred = run.predict(test_ids, threshold=0.05)
    runlog.store_predictions(ds, run.version, pred)
