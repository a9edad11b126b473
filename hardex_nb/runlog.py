"""The run log: training runs, their test predictions and embeddings, job claims, and the
provenance of every result a job wrote (a key, the method, its parameters, the fields
written, and what is needed to load the result again after a restart).

One of the dataset's own modules, beside ``dataset.py`` and ``ingest.py``: it may use the
Dataset's internals, nothing outside them may.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import store as db
from .errors import JobError, ValidationError
from .processes import pid_alive
from .store import PREDICTION_COLUMNS, RESULT_COLUMNS

if TYPE_CHECKING:
    from .dataset import Dataset


def start_run(ds: Dataset, *, model: str, params: dict) -> str:
    labeled = int((ds.sample_rows()["status"] == "labeled").sum())
    owner = json.dumps({"running_in": {"host": socket.gethostname(), "pid": os.getpid()}})
    with ds.room.write() as cur:
        (number,) = cur.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM runs").fetchone()
        version = f"V{number}"
        cur.execute(
            "INSERT INTO runs (version, number, task, model, status, started, labeled_images, "
            "total_images, label_count, params, message) "
            "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
            (
                version,
                number,
                ds.task,
                model,
                time.time(),
                labeled,
                len(ds.room.samples),
                len(ds.room.labels),
                json.dumps(params, default=str),
                owner,
            ),
        )
    ds.room.reload_runs()
    return version


def reconcile_runs(ds: Dataset) -> list[str]:
    """Mark ``failed`` the runs whose process on this machine is gone; returns them."""
    gone = []
    for run in ds.room.runs[ds.room.runs["status"] == "running"].itertuples():
        try:
            owner = json.loads(run.message)["running_in"]
            host, pid = str(owner["host"]), int(owner["pid"])
        except (TypeError, ValueError, KeyError):
            continue
        if host == socket.gethostname() and not pid_alive(pid):
            finish_run(
                ds,
                run.version,
                status="failed",
                message=f"the process that ran it (pid {pid} on {host}) ended "
                "before the run finished; marked failed when the "
                "dataset was opened",
            )
            gone.append(run.version)
    if gone:
        warnings.warn(
            f"{ds.path}: run(s) {gone} were left running by a process that "
            "ended; they are now marked failed.",
            UserWarning,
            stacklevel=3,
        )
    return gone


@contextlib.contextmanager
def recorded(
    ds: Dataset,
    version: str,
    *,
    enabled: bool = True,
    explain: Sequence[tuple[type[BaseException], Callable, Callable]] = (),
) -> Iterator[None]:
    """Keep run ``version``'s status true to what happens in the block: an interrupt records
    it ``cancelled`` (and goes on), any error ``failed`` with its text. Each ``(type,
    note, message)`` of ``explain`` records ``note(error)`` for an error of that type and
    raises ``JobError(message(error))`` in its place. The block records success itself,
    with what it measured; ``enabled=False`` (a process that does not own the run) records
    nothing."""
    try:
        yield
    except KeyboardInterrupt:
        if enabled:
            finish_run(ds, version, status="cancelled", message="interrupted by the user")
        raise
    except BaseException as exc:
        for kind, note, message in explain:
            if isinstance(exc, kind):
                if enabled:
                    finish_run(ds, version, status="failed", message=note(exc))
                raise JobError(message(exc)) from exc
        if enabled:
            finish_run(ds, version, status="failed", message=f"{type(exc).__name__}: {exc}")
        raise


def finish_run(ds: Dataset, version: str, *, status: str, **fields: Any) -> None:
    fields = {"status": status, **fields}
    if status != "running":
        fields.setdefault("finished", time.time())
    with ds.room.write() as cur:
        if status != "running":
            (started,) = cur.execute(
                "SELECT started FROM runs WHERE version=?", (version,)
            ).fetchone()
            fields.setdefault("duration", fields["finished"] - started)
        db.update(cur, "runs", fields, "version", [(*fields.values(), version)])
    ds.room.reload_runs()


def store_predictions(ds: Dataset, version: str, frame: pd.DataFrame) -> None:
    rows = frame.reindex(columns=PREDICTION_COLUMNS).assign(version=version)
    with ds.room.write() as cur:
        db.delete(cur, "predictions", "version", [version])
        db.insert(cur, "predictions", PREDICTION_COLUMNS, db.sql_rows(rows[PREDICTION_COLUMNS]))


JOB_PREFIX = "job:"  # meta keys of job claims: job:<name>


def job_key(name: str) -> str:
    return f"{JOB_PREFIX}{name}"


def claim_job(ds: Dataset, name: str) -> None:
    """Mark a job (e.g. ``auto_label``) as running; refused while another process or
    call holds it. A claim whose process is gone (on this machine: no such pid, or the
    pid now belongs to a process started later) is taken over."""
    key = job_key(name)
    me = json.dumps(
        {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "process_start": process_start(os.getpid()),
            "since": time.time(),
        }
    )
    with ds.room.write() as cur:
        row = cur.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row is not None and claim_alive(row[0]):
            holder = claim_owner(row[0])
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["since"]))
            raise JobError(
                f"another {name} job is running on this dataset (process {holder['pid']} on "
                f"{holder['host']}, since {started}); wait for it to finish. If that process "
                "is gone (its machine crashed or was switched off), release the claim with "
                "ds.release_jobs()."
            )
        cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, me))


def release_job(ds: Dataset, name: str) -> None:
    with ds.room.write() as cur:
        cur.execute("DELETE FROM meta WHERE key=?", (job_key(name),))


def write_embeddings(cur, version: str, sample_ids: Sequence[int], vectors: np.ndarray) -> None:
    """A run's image embeddings ``(N, D)`` into the store, inside the caller's
    transaction (so they land with the job's other results or not at all)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    cur.executemany(
        "INSERT OR REPLACE INTO embeddings SELECT ?, ?, ? WHERE EXISTS "
        "(SELECT 1 FROM samples WHERE sample_id = ?)",
        [(version, int(i), v.tobytes(), int(i)) for i, v in zip(sample_ids, vectors)],
    )


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or None where
    unknown: with the pid it tells a live process from a later one that reuses the pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def claim_owner(value: str) -> dict:
    """A job claim's holder; older claims were ``host:pid:since``."""
    try:
        holder = json.loads(value)
        return {
            "host": str(holder["host"]),
            "pid": int(holder["pid"]),
            "process_start": holder.get("process_start"),
            "since": float(holder["since"]),
        }
    except (ValueError, TypeError, KeyError):
        host, pid, since = (value.rsplit(":", 2) + ["", "0", "0"])[:3]
        return {
            "host": host,
            "pid": int(pid) if pid.isdigit() else 0,
            "process_start": None,
            "since": float(since) if since.replace(".", "", 1).isdigit() else 0.0,
        }


def claim_alive(value: str) -> bool:
    """Whether a claim's process may still run: always for another machine (unknowable)."""
    holder = claim_owner(value)
    if holder["host"] != socket.gethostname():
        return True
    if not pid_alive(holder["pid"]):
        return False
    started = holder["process_start"]
    return started is None or started == process_start(holder["pid"])


# -- result provenance ------------------------------------------------------------------
KEY = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def check_key(key: str) -> str:
    """A result key: letters, digits, ``_ . -`` (it is shown in tables and typed by users)."""
    if not isinstance(key, str) or not KEY.match(key):
        raise ValidationError(
            f"key={key!r}: use 1 to 100 letters, digits, '_', '.' or '-' (e.g. 'eval_V3')."
        )
    return key


def record_result(
    ds: Dataset,
    key: str,
    *,
    method: str,
    version: str | None,
    params: dict,
    fields: Sequence[str],
    payload: dict,
    cur=None,
) -> None:
    """Record what a job computed and wrote under ``key`` (replacing an older record of the
    same key): the method, the run version, its parameters, the fields it wrote and the
    ``payload`` needed to load the result again (JSON). ``cur``: the job's own write
    transaction, so that the record and the fields it describes land together or not at
    all."""
    row = (
        check_key(key),
        method,
        version,
        json.dumps(params, default=str),
        json.dumps(list(fields)),
        time.time(),
        json.dumps(payload, default=str),
    )
    if cur is not None:
        db.delete(cur, "results", "key", [key])
        db.insert(cur, "results", RESULT_COLUMNS, [row])
        return
    with ds.room.write() as cur:
        db.delete(cur, "results", "key", [key])
        db.insert(cur, "results", RESULT_COLUMNS, [row])


def results(ds: Dataset) -> pd.DataFrame:
    """One row per recorded result: key, method, version, params, fields, created."""
    cols = [c for c in RESULT_COLUMNS if c != "payload"]
    rows = ds.room.store.conn.execute(
        f"SELECT {', '.join(cols)} FROM results ORDER BY created, key"
    ).fetchall()
    out = pd.DataFrame.from_records(rows, columns=cols)
    out["params"] = [json.loads(p) for p in out["params"]]
    out["fields"] = [json.loads(f) for f in out["fields"]]
    out["created"] = pd.to_datetime(out["created"].astype("float64"), unit="s", utc=True)
    return out


def result_record(ds: Dataset, key: str) -> dict[str, Any]:
    """The record of ``key`` with its payload decoded; a ValidationError lists the keys."""
    check_key(key)
    row = ds.room.store.conn.execute(
        f"SELECT {', '.join(RESULT_COLUMNS)} FROM results WHERE key=?", (key,)
    ).fetchone()
    if row is None:
        raise _no_result(ds, key)
    record = dict(zip(RESULT_COLUMNS, row))
    for name in ("params", "fields", "payload"):
        record[name] = json.loads(record[name]) if record[name] else None
    return record


def delete_result(ds: Dataset, key: str) -> None:
    """Forget the record of ``key`` (what the job wrote into samples stays: it is the
    dataset's content now, and people may have edited it since)."""
    check_key(key)
    with ds.room.write() as cur:
        gone = db.delete(cur, "results", "key", [key])
    if not gone:
        raise _no_result(ds, key)


def _no_result(ds: Dataset, key: str) -> ValidationError:
    known = [r[0] for r in ds.room.store.conn.execute("SELECT key FROM results ORDER BY key")]
    return ValidationError(f"no result {key!r} in this dataset; recorded: {known or 'none'}.")


def model_probabilities(ds: Dataset) -> dict[int, list]:
    """Classification: the top classes and probabilities the newest ``auto_label`` or
    ``collect`` record gave each image, ``{sample_id: [[label, p], ...]}`` (Review shows
    them beside the auto-label)."""
    frame = results(ds)
    out: dict[int, list] = {}
    for key in reversed(frame.loc[frame["method"].isin(["auto_label", "collect"]), "key"].tolist()):
        table = json.loads(result_record(ds, key)["payload"]["table"])  # newest first
        columns = table["columns"]
        if "top" not in columns:
            continue
        sid, top = columns.index("sample_id"), columns.index("top")
        for row in table["data"]:
            out.setdefault(int(row[sid]), row[top])
    return out


# -- reading the log ---------------------------------------------------------------------------
def predictions(ds: Dataset, version: str) -> pd.DataFrame:
    cur = ds.room.store.conn.execute(
        f"SELECT {', '.join(PREDICTION_COLUMNS)} FROM predictions WHERE version=?", (version,)
    )
    return pd.DataFrame.from_records(cur.fetchall(), columns=PREDICTION_COLUMNS)


def jobs(ds: Dataset) -> pd.DataFrame:
    ds.refresh()
    rows = ds.room.store.conn.execute(
        f"SELECT key, value FROM meta WHERE key LIKE '{JOB_PREFIX}%' ORDER BY key"
    ).fetchall()
    out = []
    for key, value in rows:
        holder = claim_owner(value)
        alive = claim_alive(value) if holder["host"] == socket.gethostname() else None
        out.append(
            {
                "job": key[len(JOB_PREFIX) :],
                "host": holder["host"],
                "pid": holder["pid"],
                "since": pd.Timestamp(holder["since"], unit="s", tz="UTC"),
                "alive": alive,
            }
        )
    return pd.DataFrame(out, columns=["job", "host", "pid", "since", "alive"])


def release_jobs(ds: Dataset, name: str | None = None) -> list[str]:
    with ds.room.write() as cur:
        keys = [r[0] for r in cur.execute(f"SELECT key FROM meta WHERE key LIKE '{JOB_PREFIX}%'")]
        keys = [k for k in keys if name is None or k == job_key(name)]
        cur.executemany("DELETE FROM meta WHERE key=?", [(k,) for k in keys])
    return [k[len(JOB_PREFIX) :] for k in keys]


def embeddings(ds: Dataset, version: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    conn = ds.room.store.conn
    if version is None:
        row = conn.execute(
            "SELECT version FROM embeddings ORDER BY CAST(SUBSTR(version, 2) AS INTEGER) "
            "DESC LIMIT 1"
        ).fetchone()
        if row is None:
            raise ValidationError("no stored embeddings: run hardex_nb.auto_label(ds, run) first.")
        version = row[0]
    rows = conn.execute(
        "SELECT sample_id, vector FROM embeddings WHERE version=? ORDER BY sample_id",
        (version,),
    ).fetchall()
    if not rows:
        raise ValidationError(f"no embeddings stored for run {version}.")
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    return ids, np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])


def _record_of(message) -> dict:
    """A run's JSON record (its ``message``), or {} for a plain-text one."""
    if not isinstance(message, str) or not message.startswith("{"):
        return {}
    try:
        record = json.loads(message)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


class RunLog:
    """A dataset's run log, one accessor (``ds.log``): what its runs and jobs recorded.
    ``ds.runs``, ``ds.results``, ``ds.predictions(v)``, ``ds.embeddings(v)``, ``ds.jobs()``,
    ``ds.release_jobs()`` and ``ds.delete_result(key)`` are the same, by their old names."""

    def __init__(self, ds: Dataset):
        self._ds = ds

    @property
    def runs(self) -> pd.DataFrame:
        """Training runs V1, V2, ... (a copy); ``params`` decoded from JSON. Derived columns:
        ``kind`` ("trained", or "wrapped": a user's model from ``wrap_model``, never
        trained here), and from the record, ``rate_low`` / ``rate_high`` (the average
        detection rate's 95% interval) and ``val_images``."""
        self._ds.refresh()
        runs = self._ds.room.runs.copy()
        runs["params"] = [json.loads(p) if isinstance(p, str) else {} for p in runs["params"]]
        runs.insert(
            runs.columns.get_loc("model"),
            "kind",
            ["wrapped" if p.get("wrapped") else "trained" for p in runs["params"]],
        )
        notes = [_record_of(m) for m in runs["message"]]
        interval = [n.get("avg_detection_rate_interval") or [None, None] for n in notes]
        at = runs.columns.get_loc("avg_detection_rate") + 1
        runs.insert(at, "rate_low", pd.array([i[0] for i in interval], dtype="Float64"))
        runs.insert(at + 1, "rate_high", pd.array([i[1] for i in interval], dtype="Float64"))
        runs.insert(at + 2, "val_images", pd.array([n.get("val_images") for n in notes], "Int64"))
        for col in ("started", "finished"):
            runs[col] = pd.to_datetime(runs[col], unit="s", utc=True)
        return runs.reset_index(drop=True)

    @property
    def results(self) -> pd.DataFrame:
        """The results jobs recorded: key, method, run version, params, fields, created."""
        self._ds.refresh()
        return results(self._ds)

    def predictions(self, version: str) -> pd.DataFrame:
        """Stored test predictions of a run (``hx.train(..., test=True)``)."""
        return predictions(self._ds, version)

    def embeddings(self, version: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(sample_ids (N,), vectors (N, D))`` a run stored; by default the latest run's."""
        return embeddings(self._ds, version)

    def jobs(self) -> pd.DataFrame:
        """The job claims: job, host, pid, since, alive."""
        return jobs(self._ds)

    def release_jobs(self, name: str | None = None) -> list[str]:
        """Release claims left by processes that cannot release them; returns the jobs."""
        return release_jobs(self._ds, name)

    def delete_result(self, key: str) -> None:
        """Forget the record of ``key`` (the values the job wrote stay)."""
        delete_result(self._ds, key)
