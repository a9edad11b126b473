"""Results that load themselves: each job's result type registers, by the method name its
records carry in ``ds.results``, how to rebuild it from a record. `load_result` is a
lookup in that registry, so it imports no job module (no import circle through it).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import runlog
from ..errors import JobError

if TYPE_CHECKING:
    from ..dataset import Dataset

# method -> loader(ds, record) returning the result; filled by the job modules on import
LOADERS: dict[str, Callable[[Dataset, dict[str, Any]], Any]] = {}


def loads(*methods: str):
    """Register ``from_record(ds, record)`` (a function, or a class's classmethod of that
    name) as the way to rebuild the results of ``methods``.
    """

    def register(target):
        loader = getattr(target, "from_record", target)
        for method in methods:
            LOADERS[method] = loader
        return target

    return register


def load_result(ds: Dataset, key: str):
    """A result recorded in ``ds.results``, as the job returned it: a report for
    ``evaluate`` (rebuilt from the stored predictions and ground truth, no model needed),
    an `AutoLabelResult` for ``auto_label`` and ``collect``, a
    `MislabelResult` for ``find_mislabels``. ``result.key`` is the key.
    """
    record = runlog.result_record(ds, key)
    loader = LOADERS.get(record["method"])
    if loader is None:
        raise JobError(
            f"result {key!r} was recorded by {record['method']!r}, which this version cannot load."
        )
    result = loader(ds, record)
    result.key = key
    return result


def frame(text: str) -> pd.DataFrame:
    """A frame stored as ``to_json(orient="split")``."""
    return pd.read_json(io.StringIO(text), orient="split")
