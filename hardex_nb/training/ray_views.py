"""Batch inference on Ray Data, for image sets beyond one machine (``pip install
hardex_nb[ray]``).

`views` computes what `engine.predict_views` computes (predictions, mirrored
predictions, features: one decode per image) with ``Dataset.map_batches`` over a pool of
actors, each holding one copy of the model: one actor per GPU when the cluster has GPUs,
else one per CPU (up to ``actors``). It joins the running Ray cluster
(``ray.init(address="auto")`` or ``RAY_ADDRESS``) or starts a local one.
"""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import processes
from ..annotation_rules import WHOLE_IMAGE
from ..errors import JobError
from . import engine
from .data import ImageRows


def _ray():
    try:
        import ray
    except ImportError:
        raise JobError("backend='ray' needs Ray Data: pip install 'hardex_nb[ray]'.") from None
    if not ray.is_initialized():
        local = not os.environ.get("RAY_ADDRESS")
        before = _children(os.getpid()) if local else set()
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        started = sorted(_children(os.getpid()) - before) if local else []
        if started:  # a local cluster this process started ends with it, even when killed
            watch_cluster(os.getpid(), started)
    return ray


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (Linux /proc; elsewhere none are known)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def watch_cluster(driver: int, pids: Sequence[int]) -> subprocess.Popen:
    """A small process that ends ``pids`` (the Ray processes a driver started) once the
    driver is gone: ``ray.shutdown`` never runs in a driver killed with SIGKILL, and its
    local cluster would outlive it."""
    return subprocess.Popen(
        [sys.executable, processes.__file__, str(driver), *map(str, pids)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


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
    """``(plain, flipped, features)`` as `engine.predict_views` returns them, in the
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
    if task in WHOLE_IMAGE:  # (N, K) arrays, as the local path gives them
        k = plain[0].shape[-1] if plain else 0
        return (
            np.stack(plain) if plain else np.zeros((0, k)),
            np.stack(flipped) if flipped else np.zeros((0, k)),
            features,
        )
    return plain, flipped, features
