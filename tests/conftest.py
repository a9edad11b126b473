"""Shared fixtures: generated images and fresh datasets in temp folders."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from synthetic import write_image  # noqa: E402


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    for i in range(6):
        write_image(folder / f"img_{i}.png", 64 + i, 48, seed=i)
    return folder


@pytest.fixture
def det_ds(tmp_path: Path, image_folder: Path):
    import hardex_nb as hx

    ds = hx.Dataset.create(tmp_path / "det", task="detection", labels=["cat", "dog"])
    ds.add_images(image_folder)
    yield ds
    ds.close()


@pytest.fixture
def cls_ds(tmp_path: Path, image_folder: Path):
    import hardex_nb as hx

    ds = hx.Dataset.create(tmp_path / "cls", task="classification", labels=["cat", "dog"])
    ds.add_images(image_folder)
    yield ds
    ds.close()


@pytest.fixture(scope="session")
def trained_detector(tmp_path_factory):
    """One small Faster R-CNN trained on planted rectangles, shared by the tests."""
    from synthetic import boxes_dataset

    from hardex_nb.jobs import train

    ds, ids, truth = boxes_dataset(tmp_path_factory.mktemp("det"), n=60, n_labeled=45)
    run = train(ds, epochs=8, batch_size=8, image_size=96, lr=1e-3, progress=False)
    return ds, run, ids, truth


TRAINING_FIXTURES = {"trained_detector"}


@pytest.fixture(autouse=True)
def _only_slow_tests_train(request, monkeypatch):
    """A test that trains must be marked ``slow``: ``make quick`` leaves those out and stays quick.

    In a test without the mark, the one loop every training path runs (``engine.fit``) raises:
    a test that starts to train unmarked fails and names the mark it lacks.
    """
    if request.node.get_closest_marker("slow") is not None:
        return
    from hardex_nb.training import engine

    def refuse(*args, **kwargs):
        raise AssertionError(
            f"{request.node.nodeid} trains a model: mark it @pytest.mark.slow "
            "(`make quick` leaves slow tests out)"
        )

    monkeypatch.setattr(engine, "fit", refuse)


RUN_TMP = pytest.StashKey[Path]()
RUN_PREFIX = "hardex-test-run-"
RUN_FAILED = pytest.StashKey[bool]()


def pytest_configure(config):
    """One temp folder for everything the run writes.

    pytest's ``tmp_path`` folders, the notebooks' work folders (their kernels inherit ``TMPDIR``),
    JupyterLab's and the browser tests' screenshots all go under it. It is removed when the run
    passes and kept, with its path printed, when it fails: repeated runs do not fill the disk.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # two workers on two cores: one thread each (torch, and the notebooks' kernels and
        # the processes a test starts, which inherit it), not two threads fighting for a core
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    inherited = os.environ.get("TMPDIR", "")
    if os.environ.get("PYTEST_XDIST_WORKER") and Path(inherited).name.startswith(RUN_PREFIX):
        # a worker writes into its controller's folder, which the controller keeps or
        # removes; a folder within it would make Ray's socket paths too long (107 bytes)
        tempfile.tempdir = inherited
        return
    root = Path(tempfile.mkdtemp(prefix=RUN_PREFIX))
    root.chmod(0o755)  # a test opens a dataset as another user; pytest's own folders stay private
    os.environ["TMPDIR"] = str(root)
    tempfile.tempdir = str(root)
    config.stash[RUN_TMP] = root


def pytest_sessionfinish(session, exitstatus):
    session.config.stash[RUN_FAILED] = exitstatus not in (0, pytest.ExitCode.NO_TESTS_COLLECTED)


def pytest_unconfigure(config):
    root = config.stash.get(RUN_TMP, None)
    if root is None or not root.exists():
        return
    if config.stash.get(RUN_FAILED, True):
        print(f"\nhardex_nb tests: this run's temp files are kept in {root}", file=sys.stderr)
    else:
        shutil.rmtree(root, ignore_errors=True)


# The longest modules and notebooks: under pytest-xdist
# (``-n 2 --dist loadscope``, as ``make test`` runs) they start first, so that the short ones
# fill the gaps at the end instead of one long notebook running alone.
LONGEST_FIRST = (  # seconds under make test on 2 cores, measured on 2026-12-04 (late evening)
    "test_widgets_ui.py",  # ~600
    "test_training.py",  # ~210-300 (the accurate-mode held-out test: 167-258 under load)
    "test_jobs.py",  # ~225
    "04_small_objects.ipynb",  # ~150
    "01_quickstart.ipynb",  # ~135
    "03_collect.ipynb",  # ~120
    "test_distributed.py",  # ~95
    "02_detection.ipynb",  # ~85
    "test_loop_bench.py",  # ~68
)


def pytest_collection_modifyitems(config, items):
    """Tests on a trained model are ``slow`` (see ``make quick``). Under pytest-xdist the
    longest modules come first (`LONGEST_FIRST`); ``--dist loadscope`` keeps a module (one
    JupyterLab and Chromium for the browser tests, the session's trained detector) and a
    notebook (one kernel, its cells in order) on one worker.
    """
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    if config.pluginmanager.hasplugin("xdist") and getattr(config.option, "numprocesses", None):
        rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable
