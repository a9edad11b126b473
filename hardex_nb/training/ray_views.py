"""Batch inference on Ray Data, for image sets beyond one machine (``pip install
hardex_nb[ray]``).

:func:`views` computes what :func:`engine.predict_views` computes (predictions, mirrored
predictions, features: one decode per image) with ``Dataset.map_batches`` over a pool of
actors, each holding one copy of the model: one actor per GPU when the cluster has GPUs,
else one per CPU (up to ``actors``). It joins the running Ray cluster
(``ray.init(address="auto")`` or ``RAY_ADDRESS``) or starts a local one.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import JobError
from . import engine
from .data import ImageRows


def _ray():
    try:
        import ray
    except ImportError:
        raise JobError("backend='ray' needs Ray Data: pip install 'hardex_nb[ray]'.") from None
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    return ray


def views(
    model: nn.Module,
    paths: Sequence,
    *,
    task: str,
    image_size: int,
    letterbox: bool,
    batch_size: int = 32,
    actors: int | None = None,
) -> tuple:
    """``(plain, flipped, features)`` as :func:`engine.predict_views` returns them, in the
    order of ``paths``, computed on Ray."""
    ray = _ray()
    gpus = int(ray.cluster_resources().get("GPU", 0))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    pool = actors or (gpus if gpus else max(1, cpus))
    shared = ray.put(copy.deepcopy(model).cpu().eval())

    class Views:
        """One model copy, on this actor's GPU when it has one."""

        def __init__(self):
            self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            self.model = ray.get(shared).to(self.device)

        def __call__(self, batch: dict) -> dict:
            rows = ImageRows(
                list(batch["path"]),
                image_size,
                task=task,
                letterbox=letterbox,
                workers=0,
                memory_budget=0,
            )
            plain, flipped, feats = engine.predict_views(
                self.model,
                rows,
                task=task,
                device=self.device,
                batch_size=len(rows),
                plain=True,
                flip=True,
                features=True,
            )
            out = [
                pickle.dumps((plain[i], flipped[i], None if feats is None else feats[i]))
                for i in range(len(rows))
            ]
            return {"index": batch["index"], "payload": np.array(out, dtype=object)}

    items = ray.data.from_items([{"index": i, "path": str(p)} for i, p in enumerate(paths)])
    done = items.map_batches(
        Views,
        batch_size=batch_size,
        concurrency=pool,
        num_gpus=1 if gpus else 0,
        num_cpus=0 if gpus else 1,
    )
    parts = sorted(
        ((int(r["index"]), pickle.loads(r["payload"])) for r in done.iter_rows()),
        key=lambda pair: pair[0],
    )
    plain = [p for _, (p, _, _) in parts]
    flipped = [f for _, (_, f, _) in parts]
    feats = [e for _, (_, _, e) in parts]
    has = bool(feats) and feats[0] is not None
    features = np.stack(feats) if has else np.zeros((len(parts), 0), dtype=np.float32)
    if task == "classification":  # (N, K) arrays, as the local path gives them
        k = plain[0].shape[-1] if plain else 0
        return (
            np.stack(plain) if plain else np.zeros((0, k)),
            np.stack(flipped) if flipped else np.zeros((0, k)),
            features,
        )
    return plain, flipped, features
