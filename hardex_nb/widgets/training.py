"""Train from a widget: the Annotator's and the Gallery's Train button.

A click starts the dataset's training in a thread of the kernel, with the options of its
last trained run, so the notebook stays usable; the widget shows the epochs as they pass,
then the new run's average detection rate with its interval. Cancel stops it before the
next step (the run is recorded ``cancelled``). The widgets never import the jobs (their
layer is below): the package's top level hands `use_trainer` the training function.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import traitlets

from ..errors import HardexError
from ._base import BadMessage, Widget

log = logging.getLogger("hardex_nb.widgets")

# the training function (``hx.train``), given by the package's top level
_TRAINER: list[Callable[..., Any]] = []
# the options of a run's record that a new run from the widget takes again
REUSED = (
    "model",
    "epochs",
    "batch_size",
    "image_size",
    "mode",
    "lr",
    "seed",
    "val_fraction",
    "hard_weight",
    "weights",
    "weights_backbone",
)


def use_trainer(train: Callable[..., Any]) -> None:
    """Train buttons call ``train(dataset, progress=False, on_epoch=..., cancel=...,
    **options)``."""
    _TRAINER[:] = [train]


def last_options(runs) -> dict:
    """The options of the newest trained run that finished (none: the defaults)."""
    done = runs[(runs["status"] == "succeeded") & (runs["kind"] == "trained")]
    if done.empty:
        return {}
    params = done.sort_values("number").iloc[-1]["params"]
    params = json.loads(params) if isinstance(params, str) else dict(params or {})
    options = {k: params[k] for k in REUSED if k in params}
    augment = params.get("augment")
    if isinstance(augment, str) and augment in ("weak", "strong", "none"):
        options["augment"] = augment  # a callable of the user's is not kept in the record
    return options


class Trains(Widget):
    """A widget with a Train button. ``training`` is what it shows: ``{"state": idle |
    running | done | cancelled | failed, "version", "epoch", "epochs", "loss", "rate",
    "low", "high", "images", "message"}``; ``trained_run`` is the last run it trained.
    """

    training: traitlets.Dict[str, Any] = traitlets.Dict({"state": "idle"}).tag(sync=True)
    _train_thread: threading.Thread | None = None
    _cancel: threading.Event = threading.Event()
    trained_run: Any = None  # the Run the last training from this widget gave

    def _on_train(self, content: dict) -> None:
        """Start training in a thread of the kernel (one at a time per widget)."""
        if self._train_thread is not None and self._train_thread.is_alive():
            raise BadMessage("a training started here is still running; cancel it first")
        if not _TRAINER:
            raise BadMessage("no training function: import hardex_nb (it gives hx.train)")
        ds = self.ds
        options = last_options(ds.runs)
        self._cancel = threading.Event()
        self.training = {"state": "running", "epoch": 0, "epochs": options.get("epochs", 10)}
        path = ds.path
        thread = threading.Thread(
            target=self._train_in_thread, args=(path, options), name="hardex-train", daemon=True
        )
        self._train_thread = thread
        thread.start()
        given = ", ".join(f"{k}={v}" for k, v in options.items())
        self.notice = (
            f"training started with the options of the last run ({given})"
            if options
            else "training started with the default options"
        )

    def _on_cancel_training(self, content: dict) -> None:
        if self._train_thread is None or not self._train_thread.is_alive():
            raise BadMessage("no training is running")
        self._cancel.set()
        self.notice = "cancelling: the run stops before its next step"

    def _train_in_thread(self, path, options: dict) -> None:
        # the thread's own connection: an SQLite connection serves the thread that opened it
        from ..dataset import Dataset

        ds = Dataset.open(path)
        version = ""

        def on_epoch(epoch: int, epochs: int, loss: float) -> None:
            nonlocal version
            if not version:  # the run this thread started: the newest one running
                runs = ds.runs
                running = runs[(runs["status"] == "running") & ~runs["version"].isin(before)]
                version = str(running["version"].iloc[-1]) if len(running) else ""
            self.training = {
                "state": "running",
                "version": version,
                "epoch": epoch,
                "epochs": epochs,
                "loss": float(loss),
            }

        before = set(ds.runs["version"])
        try:
            try:
                run = _TRAINER[0](
                    ds, progress=False, on_epoch=on_epoch, cancel=self._cancel, **options
                )
            except KeyboardInterrupt:
                ds.refresh()
                new = sorted(set(ds.runs["version"]) - before)
                self.training = {"state": "cancelled", "version": new[-1] if new else ""}
                return
            version = run.version
            row = ds.runs.set_index("version").loc[version]
            info = json.loads(row["message"]) if isinstance(row["message"], str) else {}
            low, high = (info.get("avg_detection_rate_interval") or [None, None])[:2]
            rate = row["avg_detection_rate"]
            self.trained_run = run
            self.training = {
                "state": "done",
                "version": version,
                "rate": None if rate is None or rate != rate else float(rate),
                "low": low,
                "high": high,
                "images": info.get("val_images"),
                "epochs": len(run.history),
            }
        except HardexError as exc:
            self.training = {"state": "failed", "message": str(exc)}
        except Exception as exc:  # a bug, not the user's: shown, and logged
            log.exception("training from the widget failed")
            self.training = {"state": "failed", "message": f"{type(exc).__name__}: {exc}"}
        finally:
            ds.close()
