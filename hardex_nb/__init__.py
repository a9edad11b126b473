"""hardex_nb: find, review and fix the hard examples of an image dataset, inside Jupyter.

>>> import hardex_nb as hx
>>> ds = hx.Dataset.create("pets", task="classification", labels=["cat", "dog"])
>>> run = hx.train(ds)                 # recorded as V1
>>> hx.auto_label(ds, run)             # predictions to confirm, hard examples flagged
>>> hx.Review(ds)                      # hardest first
"""

from . import evaluation, hard, tiling
from .dataset import Dataset, ImportReport
from .errors import FormatError, HardexError, ImageError, JobError, StoreError, ValidationError
from .evaluation import (
    ClassificationReport,
    DetectionReport,
    evaluate_classification,
    evaluate_detections,
)
from .formats.common import AnnotationImport
from .ingest import tile
from .jobs import (
    AutoLabelResult,
    MislabelResult,
    Predictor,
    Run,
    auto_label,
    collect,
    evaluate,
    find_mislabels,
    load_result,
    next_batch,
    plot_runs,
    train,
    wrap_model,
)
from .reasons import HardType, Reason
from .widgets import Annotator, ConfusionMatrix, Gallery, ReportView, Review

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)

__all__ = [
    "AnnotationImport",
    "Annotator",
    "AutoLabelResult",
    "ClassificationReport",
    "ConfusionMatrix",
    "Dataset",
    "DetectionReport",
    "FormatError",
    "Gallery",
    "HardType",
    "HardexError",
    "ImageError",
    "ImportReport",
    "JobError",
    "MislabelResult",
    "Predictor",
    "Reason",
    "ReportView",
    "Review",
    "Run",
    "StoreError",
    "ValidationError",
    "__version__",
    "auto_label",
    "collect",
    "evaluate",
    "evaluate_classification",
    "evaluate_detections",
    "evaluation",
    "find_mislabels",
    "hard",
    "load_result",
    "next_batch",
    "plot_runs",
    "tile",
    "tiling",
    "train",
    "wrap_model",
]
