"""Auto-labeling, batch collection and mislabel finding with a trained run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import annotation_rules as rules
from .. import hard, ingest, runlog
from ..annotation_rules import WHOLE_IMAGE
from ..dataset import Dataset
from ..errors import JobError, ValidationError
from ..training import engine
from ..training.data import ImageRows
from .results import frame, loads
from .run import Run, targets_for
from .train import Recipe, train

TOP_K = 3  # classes kept per image for the Review


@loads("auto_label", "collect")
class AutoLabelResult:
    """What an auto-label or collect job wrote: ``sample_ids`` predicted, ``hard_ids``
    flagged hard, ``annotations`` (new ann_ids, detection), the per-sample ``table``, and
    ``skipped``: samples a person labeled, confirmed or deleted (or whose predicted label was
    deleted) while the job ran; the person's edit was kept and the job's result dropped.
    """

    def __init__(self, sample_ids, hard_ids, annotations, table: pd.DataFrame, *, skipped=()):
        self.sample_ids, self.hard_ids = list(sample_ids), list(hard_ids)
        self.annotations, self.table = list(annotations), table
        self.skipped = list(skipped)
        self.run: Run | None = None  # the model used (auto_label trains one when not given)
        self.key: str | None = None  # where it is recorded in ds.results

    def to_payload(self) -> dict:
        """What its record keeps (``ds.results``): `from_record` rebuilds it."""
        return {
            "sample_ids": [int(i) for i in self.sample_ids],
            "hard_ids": [int(i) for i in self.hard_ids],
            "annotations": [int(i) for i in self.annotations],
            "skipped": [int(i) for i in self.skipped],
            "table": self.table.to_json(orient="split", index=False, default_handler=str),
        }

    @classmethod
    def from_record(cls, ds: Dataset, record: dict) -> AutoLabelResult:
        """Rebuild a result from its ``ds.results`` record (see `hx.load_result`)."""
        payload = record["payload"]
        return cls(
            payload["sample_ids"],
            payload["hard_ids"],
            payload["annotations"],
            frame(payload["table"]),
            skipped=payload["skipped"],
        )

    def __repr__(self) -> str:
        kept = (
            f", {len(self.skipped)} skipped: edited by a person meanwhile" if self.skipped else ""
        )
        return (
            f"<AutoLabelResult: {len(self.sample_ids)} images to confirm, "
            f"{len(self.hard_ids)} hard, {len(self.annotations)} boxes{kept}>"
        )


def _check_prerequisites(ds: Dataset) -> list[int]:
    samples = ds.sample_rows()
    labeled = samples[samples["status"] == "labeled"]
    if ds.task == "classification":
        per_label = labeled["label"].value_counts()
    else:  # the images holding each label's boxes, or its multi-label tags
        ann = ds.annotation_rows()
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
    """Embeddings, class indices, sizes and sample ids (None for outside images) of the
    images the run was trained on.
    """
    ds = run.dataset
    ids: list | None = None
    if train_images is None:
        samples = ds.sample_rows()
        ids = samples.index[
            (samples["status"] == "labeled") & (samples["split"] != "test")
        ].tolist()
        paths = [ds.image_path(i) for i in ids]
        sizes = samples.loc[ids, ["width", "height"]].to_numpy(dtype=float)
        targets = targets_for(ds, ids, run.labels)
    else:
        from ..media import upright_size

        paths = list(train_images)
        sizes = [upright_size(p) for p in paths]
        sizes = np.asarray(sizes, dtype=float)
        targets = None
    emb = run.embed(paths) if paths else np.zeros((0, 0))
    if targets is None:  # a manifest gives images: the run's own predictions are their classes
        classes = _main_class(run, paths)
    elif run.task == "classification":
        classes = np.asarray(targets)
    elif run.task == "multilabel":  # the first label an image carries stands for its class
        classes = np.asarray(targets).argmax(axis=1) if len(targets) else np.zeros(0, int)
    else:
        classes = np.array(
            [np.bincount(t["labels"] - 1).argmax() if len(t["labels"]) else 0 for t in targets]
        )
    return emb, classes, sizes, ids


def _main_class(run: Run, images) -> np.ndarray:
    if run.task in WHOLE_IMAGE:
        return _top_classes(run.task, run.predict_proba(images))
    return _top_classes(run.task, run.predict_raw(images))


def _top_classes(task: str, outputs) -> np.ndarray:
    """``(N,)`` class index per image: the most probable class, or the label of the
    highest-scoring box (0 when there is none).
    """
    if task in WHOLE_IMAGE:
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
    selective: bool = True,
):
    """Predictions and hard flags for images (paths or sample ids).

    ``selective``: a classifier flags as many images as it expects wrong (auto-labeling:
    worth a reviewer's look); otherwise, as for detection, any reason flags (collect keeps
    every image that is unsure, unlike the training data or of an unusual size).

    Returns (per-image DataFrame with label, hard, hard_score, hard_reasons; list of box
    rows per image for detection; embeddings).
    """
    # one pass over the images gives predictions, mirrored predictions and features: each
    # image is decoded once (in memory or streamed), and the job works on what it read even
    # if a sample is deleted meanwhile
    plain, flipped, emb = run.views(images, progress=progress, backend=backend)
    if run.task == "classification":  # calibrated: the flag counts the errors to expect
        probs = hard.tempered(plain, run.temperature)
        table = hard.classification_hardness(
            probs,
            tta_probs=hard.tempered(flipped, run.temperature)[None],
            flag="expected" if selective else "any",
        )
        predicted = _top_classes(run.task, probs)
        table["label"] = [run.labels[k] for k in predicted]
        # the model's top classes, shown by Review beside the auto-label
        p = np.asarray(probs, dtype=np.float64)
        top = np.argsort(-p, axis=1, kind="stable")[:, :TOP_K]
        table["top"] = [
            [[run.labels[k], round(float(p[i, k]), 4)] for k in row] for i, row in enumerate(top)
        ]
        boxes_per_image: list[list] = [[] for _ in range(len(probs))]
    elif run.task == "multilabel":  # each label decided on its own, by the run's thresholds
        p = np.asarray(plain, dtype=np.float64)
        table = hard.multilabel_hardness(
            p, run.thresholds, tta_probs=flipped, flag="expected" if selective else "any"
        )
        table["label"] = None
        predicted = _top_classes(run.task, p)
        order = np.argsort(-p, axis=1, kind="stable")
        table["top"] = [  # every label's probability, for Review
            [[run.labels[k], round(float(p[i, k]), 4)] for k in row] for i, row in enumerate(order)
        ]
        table["uncertain"] = [[run.labels[k] for k in u] for u in table["uncertain"]]
        boxes_per_image = [
            [(k, float(p[i, k])) for k in np.flatnonzero(p[i] >= run.thresholds)]
            for i in range(len(p))
        ]
    else:
        raw = plain
        boxes, table = hard.detection_hardness(raw, [flipped], threshold=threshold)
        table["label"] = None
        boxes_per_image = [[] for _ in range(len(raw))]
        for row in boxes.itertuples(index=False):
            boxes_per_image[row.image].append(row)
        predicted = _top_classes(run.task, raw)
    if reference is not None and len(reference[0]) >= 2:
        ref_emb, ref_classes, ref_sizes, _ = reference
        # the distance reasons (2, 3) need features; a wrapped callable shows none
        dist = (
            hard.training_distance(ref_emb, ref_classes, emb, predicted)["reasons"]
            if emb.shape[1] and ref_emb.shape[1]
            else [""] * len(table)
        )
        res = hard.resolution_outliers(ref_sizes, sizes)
        res_codes = [hard.encode_reasons([hard.Reason.RESOLUTION]) if r else "" for r in res]
        table["reasons"] = hard.merge_reasons(table["reasons"], dist, res_codes)
        if run.task == "detection" or not selective:  # else the selective flag stays
            table["hard"] = table["reasons"] != ""
    return table, boxes_per_image, emb


def _box_rows(run: Run, boxes, width: float, height: float, *, with_hard: bool) -> list[dict]:
    if run.task == "multilabel":  # (label index, probability) of the labels given
        return [
            rules.annotation_row(-1, "tag", run.labels[k], None, score=p, origin=run.version)
            for k, p in boxes
        ]
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
            rules.annotation_row(
                -1,  # the caller sets the sample
                "box",
                run.labels[int(b.label)],
                (x0, y0, x1, y1),
                score=float(b.score),
                origin=run.version,
                hard_type=hard_type,
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
    key: str | None = None,
    **train_options,
) -> AutoLabelResult:
    """Predict every unlabeled image and put it in ``to_confirm``, flagging hard examples.

    Prerequisites, each refused with its own message: at least 2 labels with 5 or more
    labeled images each, unlabeled images, and no other auto-label job on this dataset.

    ``run``: the model to label with. Without one, a model is trained first
    (`train` with ``train_options``) by the chosen ``algorithm``: ``"fast"`` (the
    labeled images only; the default) or ``"accurate"`` (semi-supervised: classifiers
    learn from the unlabeled images by FixMatch, detectors from confident, flip-consistent
    pseudo-boxes; see `train`'s ``mode``; the run's record counts the pseudo-labels per
    epoch). The run used is ``result.run``.

    ``mode="active"`` flags hard examples (scores, reasons, per-box false_positive/missed);
    ``mode="prelabel"`` only writes predictions. Predictions are annotations with
    ``origin`` = the run's version (detection) or the sample's label (classification).
    Everything is written in one transaction; image embeddings are kept for
    `Dataset.similar_to`. ``backend="ray"`` runs the model passes on Ray Data (see
    `Run.views`).
    """
    if mode not in ("active", "prelabel"):
        raise JobError(f"mode={mode!r}: use 'active' or 'prelabel'.")
    if key is not None:
        runlog.check_key(key)
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
    ds.refresh()
    unlabeled = _check_prerequisites(ds)
    runlog.claim_job(ds, "auto_label")
    try:
        samples = ds.sample_rows()
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
        table.insert(0, "sample_id", unlabeled)
        done: list[AutoLabelResult] = []

        def record(cur, ann_ids: list[int]) -> None:  # inside the write: both land or neither
            table["written"] = ~table["sample_id"].isin(skipped)
            written = [s for s in unlabeled if s not in set(skipped)]
            hard_ids = [
                s
                for s, h, w in zip(unlabeled, table["hard"], table["written"])
                if h and w and active
            ]
            result = AutoLabelResult(written, hard_ids, ann_ids, table, skipped=skipped)
            result.run = run
            result.key = _record(
                ds,
                key or f"auto_label_{run.version}",
                "auto_label",
                run,
                {
                    "mode": mode,
                    "threshold": threshold,
                    "batch_size": batch_size,
                    "backend": backend,
                },
                result,
                embeddings=bool(emb.shape[1]),
                cur=cur,
            )
            done.append(result)

        ingest.insert_rows(
            ds,
            annotations=ann,
            sample_updates=updates,
            only_unlabeled=True,
            skipped=skipped,
            embeddings=_embeddings_to_store(run, unlabeled, emb, reference),
            replace="model",  # a second auto-label replaces the first's boxes, never stacks
            then=record,
        )
    finally:
        runlog.release_job(ds, "auto_label")
    return done[0]


def _embeddings_to_store(run: Run, ids: list, emb: np.ndarray, reference) -> tuple | None:
    """The run's features of the predicted images, and of its training images when the job
    computed them: `next_batch` reads both (what to label next, away from what is
    already labeled).
    """
    if not emb.shape[1]:
        return None
    if reference is not None and reference[3] is not None and len(reference[0]):
        return run.version, list(ids) + list(reference[3]), np.concatenate([emb, reference[0]])
    return run.version, ids, emb


def _record(
    ds: Dataset,
    key: str,
    method: str,
    run: Run,
    params: dict,
    result: AutoLabelResult,
    *,
    embeddings: bool = False,
    cur=None,
) -> str:
    """Record an auto-label or collect result under ``key`` (see ``ds.results``), inside
    the job's write transaction ``cur`` when given.
    """
    fields = ["samples.status", "samples.hard", "samples.hard_score", "samples.hard_reasons"]
    fields.append(
        "samples.label" if ds.task == "classification" else f"annotations (origin {run.version})"
    )
    if embeddings:
        fields.append(f"embeddings ({run.version})")
    if method == "collect":
        fields.insert(0, "samples (new rows, source collect)")
    runlog.record_result(
        ds,
        key,
        method=method,
        version=run.version,
        params=params,
        fields=fields,
        payload=result.to_payload(),
        cur=cur,
    )
    return key


def _read_manifest_sources(path: str | Path) -> list[Path]:
    path = Path(path)
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            src = json.loads(line)["source"]
        except (json.JSONDecodeError, KeyError, TypeError):
            from ..errors import FormatError

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
    key: str | None = None,
):
    """Run batch-inference images (folder, list or .zip) through ``run`` and keep the hard
    examples in ``into`` as ``to_confirm`` with their predictions and reasons.

    ``train_manifest``: a manifest of the images the model was trained on, for the
    distance-to-training reasons (2, 3, 5); default: the run's own labeled images. With
    ``filter_hard=False`` every image is only added to ``into`` as unlabeled.
    Returns ``(ImportReport, AutoLabelResult | None)``; the result is recorded in
    ``into.results`` under ``key`` (default ``collect_<version>``).
    """
    import contextlib

    from ..dataset import ImportReport

    if key is not None:
        runlog.check_key(key)
    if into.task != run.task:
        raise JobError(f"into is a {into.task} dataset but run {run.version} is {run.task}.")
    missing = [n for n in run.labels if n not in into.label_names]
    if missing:
        raise JobError(f"into lacks the run's labels {missing}; add them with into.add_label.")
    report = ImportReport()
    with contextlib.ExitStack() as stack:
        infos = ingest.check_files(ingest.gather_files(images, stack, True), report)
        if not infos:  # the documents: a sync of an empty input is refused, filtered or not
            reasons = "; ".join(f"{n}: {r}" for n, r in report.rejected[:5]) or "no image found"
            raise JobError(
                f"collect: the batch holds no usable image ({reasons}); nothing was "
                "added. Pass a folder, list or .zip of JPG/PNG/BMP images."
            )
        if not filter_hard:
            return into.add_images(images, origin="collect"), None
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
            selective=False,
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
        result = AutoLabelResult([], [], [], table)
        result.run = run

        def record(cur, ids: list[int]) -> None:  # inside the write: both land or neither
            result.sample_ids, result.hard_ids = list(ids), list(ids)
            result.key = _record(
                into,
                key or f"collect_{run.version}",
                "collect",
                run,
                {
                    "run_dataset": str(run.dataset.path),
                    "threshold": threshold,
                    "train_manifest": str(train_manifest) if train_manifest else None,
                    "backend": backend,
                    "images": len(infos),
                },
                result,
                cur=cur,
            )

        report.added = ingest.insert_images(
            into,
            [infos[i] for i in keep],
            copy=True,
            origin="collect",
            extra=extra,
            annotations=anns,
            duplicates=report.duplicates,  # collected before: not added twice
            then=record,
        )
    if result.key is None:  # nothing new to add: the record says so on its own
        record(None, [])
    return report, result


@loads("find_mislabels")
@dataclass
class MislabelResult:
    """What `find_mislabels` found: ``table`` (one row per labeled image: sample_id,
    label, predicted, score, flagged, out-of-sample probabilities per label), ``flagged``
    ids written for review, and ``skipped`` ids a person changed while it ran.
    """

    table: pd.DataFrame
    flagged: list[int]
    skipped: list[int]
    boxes: pd.DataFrame | None = None  # detection: the boxes in question, per image
    key: str | None = None  # where it is recorded in ds.results

    def to_payload(self) -> dict:
        """What its record keeps (``ds.results``): `from_record` rebuilds it."""
        payload = {
            "table": self.table.to_json(orient="split", index=False),
            "flagged": [int(i) for i in self.flagged],
            "skipped": [int(i) for i in self.skipped],
        }
        if self.boxes is not None:
            payload["boxes"] = self.boxes.to_json(orient="split", index=False)
        return payload

    @classmethod
    def from_record(cls, ds: Dataset, record: dict) -> MislabelResult:
        """Rebuild a result from its ``ds.results`` record (see `hx.load_result`)."""
        payload = record["payload"]
        return cls(
            frame(payload["table"]),
            payload["flagged"],
            payload["skipped"],
            boxes=frame(payload["boxes"]) if "boxes" in payload else None,
        )

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
    weights_backbone: str | Path | None = "auto",
    augment: str = "weak",
    hard_weight: float = 2.0,
    threshold: float = 0.5,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    key: str = "find_mislabels",
) -> MislabelResult:
    """Flag labeled images whose labels look wrong, from out-of-sample predictions.

    The labeled images are split into ``folds`` folds (stratified by label); for each fold a
    model (the same recipe as `train`) is trained on the other folds and predicts the
    held-out fold, so every image is judged by a model that never saw it (the recipe's
    options, ``lr`` to ``hard_weight``, mean what they mean for `train`). The fold
    models are not recorded as runs.

    - Classification: confident learning's mislabel score (``hard.mislabel_scores``:
      per-class thresholds on self-confidence); images scoring at least ``threshold`` are
      flagged. ``table`` has the out-of-sample probabilities (``p_<label>``).
    - Multilabel: every (image, label) decision is its own two-class question;
      ``hard.multilabel_mislabel_scores`` scores it and ``hard.multilabel_label_issues``
      (confident learning's pruning by noise rate) marks the wrong-looking ones; an image
      is flagged when one of its decisions is marked and scores at least ``threshold``.
      ``table["issues"]`` names them (``+dog``: likely carried but not given; ``-cat``:
      given but likely not carried).
    - Detection: ``hard.detection_label_issues`` compares the labeled boxes with the
      held-out predictions: a labeled box no prediction of its label supports
      (``false_positive``: spurious, shifted or swapped) or a confident prediction no
      labeled box matches (``missed``); images with such a box are flagged, scored by their
      worst box. ``result.boxes`` lists the boxes, in image pixels.

    Flagged images get reason 101 (suspected mislabel), their score as ``hard_score``, and
    go to ``to_confirm`` for review; a person's labels are never changed. Images a person
    relabeled or confirmed while this ran are skipped.
    """
    samples = ds.samples
    labeled = samples[samples["status"] == "labeled"]
    if ds.task == "classification":
        labeled = labeled[labeled["label"].notna()]
    labels = ds.label_names
    ids = labeled["sample_id"].astype(int).tolist()
    targets = targets_for(ds, ids, labels)
    main = (
        np.asarray(targets)
        if ds.task == "classification"
        else np.asarray(targets).argmax(axis=1)  # the first label carried, for the folds
        if ds.task == "multilabel"
        else np.array(
            [np.bincount(t["labels"]).argmax() if len(t["labels"]) else 0 for t in targets]
        )
    )
    kinds = len(np.unique(main)) if len(main) else 0
    if folds < 2 or len(ids) < 2 * folds or kinds < 2:
        raise JobError(
            f"find_mislabels needs at least {2 * folds} labeled images over 2 or "
            f"more labels for {folds} folds; found {len(ids)} over {kinds}. "
            "Label more images or use fewer folds."
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
    name, size = recipe.model, recipe.image_size
    hard_now = labeled["hard"].to_numpy(bool)
    dev = engine.resolve_device(device)
    fold = _folds(main, folds, seed)
    paths = [ds.image_path(i) for i in ids]
    held_out: list = [None] * len(ids)
    for k in tqdm(range(folds), desc="folds", unit="fold", disable=not progress):
        train_idx, held = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        engine.seed_everything(seed + k)
        net = recipe.network(len(labels), dev)
        data = ImageRows(
            [paths[i] for i in train_idx],
            size,
            task=ds.task,
            targets=[targets[i] for i in train_idx],
        )
        opts = recipe.options(
            epochs=epochs,
            batch_size=batch_size,
            device=dev,
            seed=seed + k,
            hard=hard_now[train_idx],
        )
        engine.fit(net, data, opts)
        outputs = engine.predict(
            net, ImageRows([paths[i] for i in held], size, task=ds.task), task=ds.task, device=dev
        )
        for i, out in zip(held, outputs):
            held_out[i] = out
    boxes = None
    if ds.task == "classification":
        probs = np.asarray(held_out, dtype=np.float64)
        score = hard.mislabel_scores(main, probs)
        flagged_mask = score >= threshold
        table = pd.DataFrame(
            {
                "sample_id": ids,
                "label": [labels[g] for g in main],
                "predicted": [labels[p] for p in probs.argmax(1)],
                "score": score,
                "flagged": flagged_mask,
            }
        )
        for j, label in enumerate(labels):
            table[f"p_{label}"] = probs[:, j]
    elif ds.task == "multilabel":
        probs = np.asarray(held_out, dtype=np.float64)
        tags = np.asarray(targets)
        per_label = hard.multilabel_mislabel_scores(tags, probs)
        score = per_label.max(axis=1, initial=0.0)
        pruned = hard.multilabel_label_issues(tags, probs) & (per_label >= threshold)
        table = pd.DataFrame(
            {
                "sample_id": ids,
                "label": None,
                "labels": [[labels[k] for k in np.flatnonzero(g)] for g in tags],
                "score": score,
                "flagged": pruned.any(axis=1),
                # the decisions that look wrong: "+name" (likely carried but not given),
                # "-name" (given but likely not carried)
                "issues": [
                    [("-" if tags[i, k] else "+") + labels[k] for k in np.flatnonzero(pruned[i])]
                    for i in range(len(ids))
                ],
            }
        )
        for j, label in enumerate(labels):
            table[f"p_{label}"] = probs[:, j]
    else:
        given = [{"boxes": t["boxes"], "labels": t["labels"] - 1} for t in targets]
        boxes, images = hard.detection_label_issues(given, held_out)
        boxes.insert(0, "sample_id", [ids[i] for i in boxes.pop("image")])
        boxes["label"] = [labels[k] for k in boxes["label"]]
        table = pd.DataFrame(
            {
                "sample_id": ids,
                "label": labeled["label"].to_numpy(),
                "score": images["score"].to_numpy(),
                "flagged": images["hard"].to_numpy(),
                "issues": images["n_issues"].to_numpy(),
            }
        )
    chosen = table[table["flagged"]].set_index("sample_id")
    # what the job read: a classifier's label (a detection sample has none)
    expected = (
        chosen["label"]
        if ds.task == "classification"
        else pd.Series([None] * len(chosen), index=chosen.index, dtype=object)
    )
    result = MislabelResult(table, [], [], boxes=boxes)

    def record(cur, skipped: list[int]) -> None:  # inside the write: both land or neither
        result.skipped = list(skipped)
        result.flagged = [i for i in chosen.index.tolist() if i not in set(skipped)]
        runlog.record_result(
            ds,
            key,
            method="find_mislabels",
            version=None,
            params={
                "folds": folds,
                "model": name,
                "epochs": epochs,
                "image_size": size,
                "threshold": threshold,
                "seed": seed,
            },
            fields=["samples.status", "samples.hard", "samples.hard_score", "samples.hard_reasons"],
            payload=result.to_payload(),
            cur=cur,
        )
        result.key = key

    if len(chosen):
        ds.flag_for_review(
            expected, reason=hard.SUSPECTED_MISLABEL, scores=chosen["score"], then=record
        )
    else:
        record(None, [])
    return result


def next_batch(
    ds: Dataset,
    n: int = 30,
    *,
    strategy: str = "diverse",
    version: str | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """The ``n`` auto-labeled images that teach the next model most, in review order.

    After `auto_label`: among images waiting for confirmation it takes the ones the
    model is unsure of (``hard_score``), spread over the image embeddings the job stored (a
    batch is not 30 near-duplicates of one confusion, nor more of what is already labeled)
    and over predicted classes. ``strategy`` names the rule of
    `hardex_nb.hard.select_batch` (``"diverse"``, ``"kcenter"`` or ``"score"``: the
    highest hard scores, as ``ds.query(sort_by="hard_score")`` orders them). ``version``:
    the run whose embeddings to use (default: the latest that stored any). After a
    wrapped model that shows no features, the batch is the highest hard scores.

    Returns the samples (as ``ds.samples``) in the order chosen; label or confirm them, e.g.
    ``hx.Review(ds, sample_ids=batch.sample_id)``.
    """
    ds.refresh()
    try:
        ids, vectors = ds.embeddings(version)
    except ValidationError:
        if version is not None:
            raise
        ids, vectors = np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    samples = ds.sample_rows()
    where = pd.Series(np.arange(len(ids)), index=ids)
    waiting = samples.index[(samples["status"] == "to_confirm") & samples["hard_score"].notna()]
    if not waiting.isin(where.index).any():  # a wrapped model shows no features: by score
        ids, vectors = waiting.to_numpy(), np.zeros((len(waiting), 0), dtype=np.float32)
        where = pd.Series(np.arange(len(ids)), index=ids)
    waiting = waiting[waiting.isin(where.index)]
    if not len(waiting):
        raise JobError(
            "next_batch needs auto-labeled images with hard scores: run "
            "hx.auto_label(ds, run) (mode='active') first."
        )
    labeled = samples.index[samples["status"] == "labeled"]
    labeled = labeled[labeled.isin(where.index)]
    predicted = None
    if ds.task == "classification":
        codes = {name: k for k, name in enumerate(ds.label_names)}
        predicted = samples.loc[waiting, "label"].map(codes).fillna(-1).to_numpy(dtype=np.int64)
    order = hard.select_batch(
        samples.loc[waiting, "hard_score"].to_numpy(dtype=float),
        vectors[where[waiting].to_numpy()],
        n,
        covered=vectors[where[labeled].to_numpy()],
        predicted=predicted,
        strategy=strategy,
        seed=seed,
    )
    return ds.samples_at(waiting[order].tolist())
