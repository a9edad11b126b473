"""Labeling time saved, in a person's seconds, on held-out data.

Every strategy pays the same published prices (``hardex_nb.review_time``: choose a class
3.0 s, verify a proposal 1.6 s, fix a wrong one 1.6 + 3.0 s; draw a box 7.0 s, ...), and
every model is scored on a fixed test set that is never selected, reviewed or trained on.

Classification: scikit-learn's digits as 32×32 images, 500 held out, the other 1,297 the
pool. Each seed starts from 5 hand labels per class (the same start for every strategy) and
trains a resnet18 from scratch with ``hx.train``:

- ``manual``: random images labeled by hand, up to the whole pool (what a user does today);
- ``review only``: each round ``hx.auto_label`` proposes a class for every unlabeled image
  and the reviewer verifies or fixes the ``per_round`` that ``hx.next_batch`` shows first;
  the next model trains on the reviewed images only;
- ``loop`` (the package's auto-labeling loop): the same review, and the auto-labels the
  ``hard`` flag does not mark are accepted as they are, unseen (0 s: nobody looks at them;
  their errors stay in the data and the held-out test sees what they cost).

Printed per strategy: test accuracy against cumulative seconds (mean ± std over seeds), and

- the **time ratio**: seconds a strategy needs to reach manual labeling's final accuracy
  (linear interpolation along its curve) / manual's seconds (goal ≤ 0.30: "saves more
  than 70% of labeling time");
- the **label ratio**: labels a person gave or checked by then / manual's labels (≤ 0.5);
- the wrong labels left in the training data, and the ``hard`` flag's precision and recall
  on the pool at the first round (≥ 0.7 each).

    python bench/bench_loop.py [--seeds 5] [--rounds 5] [--per-round 60] [--epochs 15]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_triage import digits_images, efficiency, flag_quality, split

import hardex_nb as hx
from hardex_nb import review_time

STRATEGIES = ("manual", "review only", "loop")


def manual_sizes(start: int, pool: int, points: int) -> list[int]:
    """Label counts of the manual curve: from ``start`` to the whole pool, evenly on a log
    scale (``points`` of them)."""
    sizes = np.unique(np.round(np.geomspace(start, pool, points)).astype(int))
    return sizes.tolist()


def classification_curve(
    paths: list[Path],
    y: np.ndarray,
    test: np.ndarray,
    pool: np.ndarray,
    strategy: str,
    seed: int,
    root: Path,
    *,
    start_per_class: int = 5,
    per_round: int = 60,
    rounds: int = 5,
    epochs: int = 15,
) -> dict:
    """One strategy, one seed. Returns the curve (cumulative seconds → test accuracy), the
    labels a person gave or checked at each point, the wrong labels trained on at each
    point, the flag's (precision, recall, share) at the first round, and every image a
    person saw (so a caller can check none came from the test set)."""
    names = [str(c) for c in range(int(y.max()) + 1)]
    ds = hx.Dataset.create(
        root / f"{strategy}_{seed}".replace(" ", "_"), task="classification", labels=names
    )
    ids = ds.add_images([paths[i] for i in pool]).added
    truth = dict(zip(ids, (names[c] for c in y[pool])))
    index_of = dict(zip(ids, pool.tolist()))
    rng = np.random.default_rng(seed)
    start = np.concatenate(
        [
            rng.choice(np.flatnonzero(y[pool] == c), start_per_class, replace=False)
            for c in range(len(names))
        ]
    )
    seen = [ids[j] for j in start]
    for sid in seen:
        ds.set_label(sid, truth[sid])
    bill = review_time.label_classes(len(seen))
    test_paths = [paths[i] for i in test]
    curve, people, noise = {}, {}, {}
    flag = (np.nan, np.nan, np.nan)
    plan = manual_sizes(len(seen), len(ids), rounds + 1) if strategy == "manual" else None
    for r in range(rounds + 1):
        run = hx.train(
            ds,
            epochs=epochs,
            batch_size=16,
            image_size=32,
            seed=seed,
            progress=False,
            val_fraction=0,
        )
        labeled = ds.samples[ds.samples["status"] == "labeled"]
        curve[bill.seconds] = float((run.predict_proba(test_paths).argmax(1) == y[test]).mean())
        people[bill.seconds] = len(seen)
        noise[bill.seconds] = int(
            sum(truth[int(s)] != str(v) for s, v in zip(labeled.sample_id, labeled.label))
        )
        if r == rounds:
            break
        if strategy == "manual":
            unl = ds.query(status="unlabeled").sample_id.to_numpy()
            pick = rng.choice(unl, min(plan[r + 1] - len(seen), len(unl)), replace=False)
            pick = [int(s) for s in pick]
            bill = bill + review_time.label_classes(len(pick))
        else:
            result = hx.auto_label(ds, run, progress=False)
            table = result.table.set_index("sample_id")
            if r == 0:
                wrong = np.array([truth[s] != table.at[s, "label"] for s in table.index])
                p, rec = flag_quality(table["hard"].to_numpy(bool), wrong)
                flag = (p, rec, float(table["hard"].mean()))
            pick = hx.next_batch(ds, per_round, seed=seed).sample_id.astype(int).tolist()
            bill = bill + review_time.review_classes(
                table.loc[pick, "label"].to_numpy(), [truth[s] for s in pick]
            )
            waiting = ds.query(status="to_confirm").sample_id.astype(int)
            rest = [s for s in waiting if s not in set(pick)]
            if strategy == "loop":
                sure = [s for s in rest if not table.at[s, "hard"]]
                ds.confirm(sure)  # accepted unseen, as auto-labeled
                rest = [s for s in rest if table.at[s, "hard"]]
            ds.set_status(rest, "unlabeled")
        for s in pick:
            ds.set_label(s, truth[s])
        seen += pick
    return {
        "curve": pd.Series(curve),
        "people": pd.Series(people),
        "noise": pd.Series(noise),
        "flag": flag,
        "seen": [index_of[s] for s in seen],
        "bill": bill,
    }


def ratios(out: dict, manual: dict) -> dict:
    """The time and label ratios of one strategy's run against manual's, same seed."""
    target = float(manual["curve"].iloc[-1])
    seconds = efficiency(out["curve"], target)
    people = out["people"]
    if np.isnan(seconds):
        labels = float("nan")
    else:  # labels a person had touched by then, interpolated like the seconds
        labels = float(np.interp(seconds, people.index.to_numpy(float), people.to_numpy(float)))
    return {
        "time ratio": seconds / manual["curve"].index[-1],
        "label ratio": labels / manual["people"].iloc[-1],
    }


def classification(args, root: Path) -> pd.DataFrame:
    paths, y = digits_images(root / "digits")
    test, pool = split(len(paths), args.test)
    runs: dict[str, list[dict]] = {s: [] for s in STRATEGIES}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        for s in STRATEGIES:
            out = classification_curve(
                paths,
                y,
                test,
                pool,
                s,
                seed,
                root / "runs",
                per_round=args.per_round,
                rounds=args.rounds,
                epochs=args.epochs,
            )
            assert not set(out["seen"]) & set(test.tolist()), "a test image was shown"
            runs[s].append(out)
            print(
                f"  seed {seed} {s:>11}: "
                + " ".join(f"{k:.0f}s:{v:.3f}" for k, v in out["curve"].items()),
                flush=True,
            )
    print(
        f"\ntest accuracy on {args.test} held-out digits against a person's seconds "
        f"(mean ± std over {args.seeds} seeds)"
    )
    for s, outs in runs.items():
        secs = np.array([o["curve"].index.to_numpy() for o in outs])
        accs = np.array([o["curve"].to_numpy() for o in outs])
        print(
            f"  {s:>11}: "
            + "  ".join(
                f"{sec:.0f}s {a:.3f}±{sd:.3f}"
                for sec, a, sd in zip(secs.mean(0), accs.mean(0), accs.std(0))
            )
        )
    rows = []
    for s, outs in runs.items():
        r = pd.DataFrame([ratios(o, m) for o, m in zip(outs, runs["manual"])])
        f = np.array([o["flag"] for o in outs], dtype=float)
        rows.append(
            {
                "strategy": s,
                "time ratio": f"{r['time ratio'].mean():.2f} ± {r['time ratio'].std(ddof=0):.2f}",
                "label ratio": f"{r['label ratio'].mean():.2f} ± {r['label ratio'].std(ddof=0):.2f}",
                "never reached": int(r["time ratio"].isna().sum()),
                "final accuracy": f"{np.mean([o['curve'].iloc[-1] for o in outs]):.3f}",
                "final seconds": f"{np.mean([o['curve'].index[-1] for o in outs]):.0f}",
                "wrong labels trained on": f"{np.mean([o['noise'].iloc[-1] for o in outs]):.0f}",
                "flag precision": "" if s == "manual" else f"{np.nanmean(f[:, 0]):.2f}",
                "flag recall": "" if s == "manual" else f"{np.nanmean(f[:, 1]):.2f}",
            }
        )
    table = pd.DataFrame(rows)
    print("\nratios to manual labeling's final accuracy (goal: time ≤ 0.30, labels ≤ 0.5)")
    print(table.to_string(index=False))
    print(f"({time.perf_counter() - t0:.0f} s)")
    return table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=60)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--test", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hardex-loop-") as tmp:
        classification(args, Path(tmp))


if __name__ == "__main__":
    main()
