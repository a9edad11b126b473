"""runlog.py: runs, result records and their keys, job claims."""

import pytest

import hardex_nb as hx
from hardex_nb import JobError, ValidationError, runlog


@pytest.fixture
def ds(tmp_path):
    return hx.Dataset.create(tmp_path / "d", task="classification", labels=["a", "b"])


def test_a_runs_status_follows_what_happens_in_its_block(ds):
    ok = runlog.start_run(ds, model="m", params={})
    with runlog.recorded(ds, ok):
        runlog.finish_run(ds, ok, status="succeeded")
    cancelled = runlog.start_run(ds, model="m", params={})
    with pytest.raises(KeyboardInterrupt), runlog.recorded(ds, cancelled):
        raise KeyboardInterrupt
    failed = runlog.start_run(ds, model="m", params={})
    with pytest.raises(RuntimeError), runlog.recorded(ds, failed):
        raise RuntimeError("boom")
    explained = runlog.start_run(ds, model="m", params={})
    explain = [(MemoryError, lambda e: "out of memory", lambda e: "lower the batch size")]
    with pytest.raises(JobError, match="lower the batch size"):
        with runlog.recorded(ds, explained, explain=explain):
            raise MemoryError
    quiet = runlog.start_run(ds, model="m", params={})
    with pytest.raises(RuntimeError), runlog.recorded(ds, quiet, enabled=False):
        raise RuntimeError("another process owns it")
    runs = hx.Dataset.open(ds.path).runs.set_index("version")
    assert runs.loc[[ok, cancelled, failed, explained, quiet], "status"].tolist() == [
        "succeeded",
        "cancelled",
        "failed",
        "failed",
        "running",
    ]
    assert runs.loc[failed, "message"] == "RuntimeError: boom"
    assert runs.loc[explained, "message"] == "out of memory"


def test_result_records_are_replaced_by_key_and_keys_are_checked(ds):
    runlog.record_result(ds, "k1", method="m", version=None, params={}, fields=[], payload={"n": 1})
    runlog.record_result(ds, "k1", method="m", version=None, params={}, fields=[], payload={"n": 2})
    assert ds.results["key"].tolist() == ["k1"]
    assert runlog.result_record(ds, "k1")["payload"] == {"n": 2}
    with pytest.raises(ValidationError, match="recorded: \\['k1'\\]"):
        runlog.result_record(ds, "k2")
    for bad in ("", "a b", "x" * 101, 5):
        with pytest.raises(ValidationError, match="key="):
            runlog.check_key(bad)


def test_a_job_claim_is_one_at_a_time_and_released(ds):
    runlog.claim_job(ds, "auto_label")
    with pytest.raises(JobError, match="another auto_label job is running"):
        runlog.claim_job(ds, "auto_label")
    runlog.release_job(ds, "auto_label")
    runlog.claim_job(ds, "auto_label")
    runlog.release_job(ds, "auto_label")
    assert ds.jobs().empty


def test_the_run_log_is_one_accessor_and_the_old_names_are_the_same(ds):
    version = runlog.start_run(ds, model="m", params={"epochs": 1})
    runlog.finish_run(ds, version, status="succeeded")
    runlog.record_result(ds, "k", method="m", version=version, params={}, fields=[], payload={})
    assert ds.log.runs.equals(ds.runs) and ds.log.runs["params"].tolist() == [{"epochs": 1}]
    assert ds.log.results.drop(columns="created").equals(ds.results.drop(columns="created"))
    assert ds.log.predictions(version).empty and ds.predictions(version).empty
    runlog.claim_job(ds, "collect")
    assert ds.log.jobs()["job"].tolist() == ["collect"] == ds.jobs()["job"].tolist()
    assert ds.log.release_jobs("collect") == ["collect"] and ds.jobs().empty
    ds.log.delete_result("k")
    assert ds.results.empty
    with pytest.raises(ValidationError, match="no stored embeddings"):
        ds.log.embeddings()
