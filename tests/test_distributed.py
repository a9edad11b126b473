"""Training across processes: ``hardex train`` under torchrun, DDP with the gloo backend on
the CPU, two processes, real data on disk."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from synthetic import bars_dataset

import hardex_nb as hx

pytestmark = pytest.mark.slow
TORCHRUN = Path(sys.executable).with_name("torchrun")


def _hardex_train(dataset: Path, *args: str, procs: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [
            str(TORCHRUN),
            "--standalone",
            "--nnodes",
            "1",
            "--nproc_per_node",
            str(procs),
            "-m",
            "hardex_nb.cli",
            "train",
            "--dataset",
            str(dataset),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_ddp_with_two_processes_trains_once_and_records_one_run(tmp_path):
    ds, ids, truth = bars_dataset(tmp_path, n=40, n_labeled=40)
    done = _hardex_train(
        ds.path,
        "--epochs",
        "3",
        "--batch-size",
        "4",
        "--image-size",
        "32",
        "--weights",
        "none",
        "--val-fraction",
        "0.2",
        "--lr",
        "3e-3",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "V1 resnet18 succeeded" in done.stdout
    assert done.stdout.count("succeeded") == 1  # one process speaks
    runs = hx.Dataset.open(ds.path).runs
    assert runs["version"].tolist() == ["V1"]  # one process records
    run = runs.iloc[0]
    assert run["params"]["world_size"] == 2
    message = json.loads(run["message"])
    assert len(message["loss"]) == 3 and np.isfinite(message["loss"]).all()
    # 32 train images (8 held out), batches of 4: 8 batches an epoch, 4 on each process
    assert message["val_images"] == 8 and message["steps_per_epoch"] == 4
    loaded = hx.Run.load(hx.Dataset.open(ds.path), "V1")  # the weights are usable
    assert loaded.predict_proba(ids[:4]).shape == (4, 2)


def test_a_cli_error_is_one_line_and_a_nonzero_exit(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "hardex_nb.cli", "train", "--dataset", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hardex train: ") and "missing" in lines[0]
    assert "Traceback" not in done.stderr


def test_ray_local_views_and_auto_label_match_the_local_path(tmp_path):
    import shutil

    import ray  # the dev extra installs ray[data]

    ds, ids, truth = bars_dataset(tmp_path, n=30, n_labeled=16)
    run = hx.train(ds, epochs=2, batch_size=8, image_size=32, weights=None, progress=False)
    unlabeled = ds.samples.query("status == 'unlabeled'")["sample_id"].tolist()
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        local = run.views(unlabeled)
        remote = run.views(unlabeled, backend="ray", batch_size=4)
        for a, b in zip(local, remote):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        twin = hx.Dataset.open(shutil.copytree(ds.path, tmp_path / "twin"))
        on_ray = hx.auto_label(twin, hx.Run.load(twin, run.version), backend="ray", progress=False)
    finally:
        ray.shutdown()
    here = hx.auto_label(ds, run, progress=False)
    cols = ["sample_id", "label", "hard", "reasons"]
    assert on_ray.table[cols].equals(here.table[cols])
    np.testing.assert_allclose(on_ray.table["score"], here.table["score"], atol=1e-5)
    with pytest.raises(hx.JobError, match="backend='gpu'"):
        run.views(unlabeled, backend="gpu")


@pytest.mark.slow
def test_a_local_ray_cluster_ends_with_its_killed_driver(tmp_path):
    """A driver killed with SIGKILL never runs ray.shutdown; its cluster must not outlive it."""
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    pytest.importorskip("ray")  # the dev extra installs ray[data]
    script = textwrap.dedent(
        """
        import os, signal
        os.environ.pop("RAY_ADDRESS", None)
        from hardex_nb.training import ray_views
        before = ray_views._children(os.getpid())
        ray_views._ray()
        started = ray_views._children(os.getpid()) - before
        print(" ".join(map(str, sorted(started))), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180, cwd=tmp_path
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    pids = [int(p) for p in proc.stdout.split()]
    assert pids, "ray.init started no process"

    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 30
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [p for p in pids if alive(p)], "Ray processes outlived their driver"
