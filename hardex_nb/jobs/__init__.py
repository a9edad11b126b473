"""Long tasks on a Dataset, one module each.

- ``run``: `Run` (a model tied to its dataset and version), `wrap_model`,
  `Predictor`.
- ``train``: `train`, each run recorded in ``ds.runs``.
- ``autolabel``: `auto_label`, `next_batch`, `collect`,
  `find_mislabels`.
- ``report``: `evaluate`, `plot_runs`, `load_result` (a result recorded
  in ``ds.results``).
"""

from .autolabel import (
    AutoLabelResult,
    MislabelResult,
    auto_label,
    collect,
    find_mislabels,
    next_batch,
)
from .report import evaluate, load_result, plot_runs
from .run import Predictor, Run, wrap_model
from .train import train

__all__ = [
    "AutoLabelResult",
    "MislabelResult",
    "Predictor",
    "Run",
    "auto_label",
    "collect",
    "evaluate",
    "find_mislabels",
    "load_result",
    "next_batch",
    "plot_runs",
    "train",
    "wrap_model",
]
