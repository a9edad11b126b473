"""hardex_nb: find, review and fix the hard examples of an image dataset, inside Jupyter.

>>> import hardex_nb as hx
>>> ds = hx.Dataset.create("pets", task="classification", labels=["cat", "dog"])
>>> run = hx.train(ds)                 # recorded as V1
>>> hx.auto_label(ds, run)             # predictions to confirm, hard examples flagged
>>> hx.Review(ds)                      # hardest first
"""

from typing import TYPE_CHECKING

from . import evaluation, hard, tiling
from .dataset import Dataset, ImportReport
from .errors import FormatError, HardexError, ImageError, JobError, StoreError, ValidationError
from .evaluation import (
    ClassificationReport,
    DetectionReport,
    MultilabelReport,
    evaluate_classification,
    evaluate_detections,
    evaluate_multilabel,
)
from .formats.common import AnnotationImport
from .ingest import tile
from .reasons import HardType, Reason
from .tide import TideReport, tide_errors, tide_of
from .widgets import Annotator, ConfusionMatrix, Gallery, ReportView, Review
from .widgets.training import use_trainer as _use_trainer

if TYPE_CHECKING:  # the names below import torch: they load on first use (see __getattr__)
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
        wrap_model,
    )
    from .jobs.train import train  # the function, not the submodule of that name (mypy)

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
    "MultilabelReport",
    "Predictor",
    "Reason",
    "ReportView",
    "Review",
    "Run",
    "StoreError",
    "TideReport",
    "ValidationError",
    "__version__",
    "auto_label",
    "collect",
    "evaluate",
    "evaluate_classification",
    "evaluate_detections",
    "evaluate_multilabel",
    "evaluation",
    "find_mislabels",
    "hard",
    "load_result",
    "next_batch",
    "plot_runs",
    "tide_errors",
    "tide_of",
    "tile",
    "tiling",
    "train",
    "wrap_model",
]


# training, auto-labeling and the rest of ``jobs`` need torch and torchvision (~3 s to import):
# ``import hardex_nb`` stays quick for a notebook that only labels, imports or evaluates. A name
# of ``__all__`` that is not defined above is one of ``jobs``'s: it loads on first use.
def __getattr__(name: str):
    if name in __all__:
        from . import jobs

        value = getattr(jobs, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hardex_nb' has no attribute {name!r}")


def _train_from_a_widget(*args, **kwargs):
    """``hx.train`` for the widgets' Train button (loaded on first use: it needs torch)."""
    from .jobs.train import train as train_function

    return train_function(*args, **kwargs)


_use_trainer(_train_from_a_widget)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
