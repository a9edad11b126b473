"""hardex_nb: find, review and fix the hard examples of an image dataset, inside Jupyter."""

from .dataset import Dataset, ImportReport
from .errors import (FormatError, HardexError, ImageError, JobError, StoreError,
                     ValidationError)

__version__ = "0.1.0"

__all__ = [
    "Dataset", "ImportReport", "HardexError", "ValidationError", "ImageError", "FormatError",
    "StoreError", "JobError", "__version__",
]
