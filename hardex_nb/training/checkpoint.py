"""A run's weights file, written and read in one place: ``runs/<version>/model.pt`` holds
``{"state_dict": ..., "config": {model, labels, image_size, task, letterbox, [temperature,
thresholds]}}``,
read back with ``weights_only=True`` (tensors and plain values only: a weights file never
runs code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import JobError

CONFIG_KEYS = ("model", "labels", "image_size", "task", "letterbox")
#: kept when given: a classifier's calibration (`hardex_nb.hard.fit_temperature`)
OPTIONAL_KEYS = ("temperature",)
#: kept when given: a multi-label classifier's threshold per label, chosen on validation
OPTIONAL_LISTS = ("thresholds",)


def save(path: Path, model: nn.Module, config: dict[str, Any]) -> None:
    """Write ``model``'s weights and the ``config`` that rebuilds it."""
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise ValueError(f"checkpoint config lacks {missing}")
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = {k: config[k] for k in CONFIG_KEYS}
    plain |= {k: float(config[k]) for k in OPTIONAL_KEYS if config.get(k) is not None}
    plain |= {k: [float(v) for v in config[k]] for k in OPTIONAL_LISTS if config.get(k) is not None}
    plain["labels"] = [str(x) for x in plain["labels"]]
    torch.save({"state_dict": model.state_dict(), "config": plain}, path)


def load(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state_dict and config a `save` wrote (a state_dict alone has no config)."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise JobError(f"weights file {path} not found.") from None
    except Exception as exc:  # torch raises many types for a bad or foreign file
        raise JobError(f"{path}: cannot load weights ({exc}).") from exc
    if isinstance(saved, dict) and "state_dict" in saved:
        return saved["state_dict"], dict(saved.get("config") or {})
    if isinstance(saved, dict):
        return saved, {}
    raise JobError(f"{path}: holds no state_dict.")


def fitting(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of ``state`` that fit ``model`` (same name and shape). A hardex_nb
    classifier is saved as ``Sequential(Normalize, net)``: its keys lose the ``1.``."""
    state = {
        (k[2:] if k.startswith("1.") else k): v for k, v in state.items() if not k.startswith("0.")
    }
    own = model.state_dict()
    return {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
