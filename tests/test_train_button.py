"""The Train button of the Annotator and the Gallery: training in a thread of the kernel."""

import time

import pytest
from synthetic import bars_dataset

import hardex_nb as hx
from hardex_nb.widgets.training import last_options


def _wait(widget, timeout=120):
    start = time.time()
    states = []
    while widget._train_thread.is_alive():
        states.append(dict(widget.training))
        assert time.time() - start < timeout, "the training did not end"
        time.sleep(0.02)
    return states


@pytest.mark.slow
def test_train_takes_the_last_runs_options_shows_its_epochs_and_then_its_rate(tmp_path):
    ds, _, _ = bars_dataset(tmp_path, n=40, n_labeled=30)
    first = hx.train(ds, epochs=3, image_size=32, lr=2e-3, progress=False)
    annotator = hx.Annotator(ds)
    annotator.handle({"action": "train"})
    assert "epochs=3" in annotator.notice and "image_size=32" in annotator.notice
    with_thread = annotator._train_thread
    annotator.handle({"action": "train"})  # a second click while it runs is refused
    assert "still running" in annotator.error and annotator._train_thread is with_thread
    seen = _wait(annotator)
    running = [s for s in seen if s["state"] == "running" and s.get("epoch")]
    assert running and {s["epochs"] for s in running} == {3}
    assert any(s.get("version") == "V2" for s in running)
    done = annotator.training
    assert done["state"] == "done" and done["version"] == "V2" and done["epochs"] == 3
    runs = hx.Dataset.open(ds.path).runs.set_index("version")
    assert runs.loc["V2", "status"] == "succeeded"
    assert done["rate"] == pytest.approx(runs.loc["V2", "avg_detection_rate"])
    assert runs.loc["V2", "params"]["lr"] == first.info["params"]["lr"] == 2e-3
    assert annotator.trained_run.version == "V2"
    ds.refresh()
    assert list(ds.runs["version"]) == ["V1", "V2"]  # the widget's dataset sees it


@pytest.mark.slow
def test_cancel_stops_the_run_and_records_it_cancelled(tmp_path):
    ds, _, _ = bars_dataset(tmp_path, n=40, n_labeled=30)
    gallery = hx.Gallery(ds)
    gallery.handle({"action": "cancel_training"})
    assert "no training is running" in gallery.error
    gallery.handle({"action": "train"})  # no run yet: the defaults
    assert "default options" in gallery.notice
    gallery.handle({"action": "cancel_training"})
    _wait(gallery)
    assert gallery.training == {"state": "cancelled", "version": "V1"}
    runs = hx.Dataset.open(ds.path).runs
    assert runs["status"].tolist() == ["cancelled"]
    assert last_options(runs) == {}  # a cancelled run lends no options
