"""The ``hardex`` command: training and batch hard-example collection outside a notebook.

    hardex train --dataset DS [--model resnet50] [--epochs 10] [--batch-size 32] ...
    torchrun --nproc_per_node 4 -m hardex_nb.cli train --dataset DS ...   # several GPUs
    hardex collect --dataset DS --run V3 --images FOLDER_OR_ZIP --into TARGET_DS [--create]
                   [--train-manifest FILE] [--all] [--threshold 0.5]

An error is one line on stderr and a non-zero exit status (2 for a hardex_nb error, 1 for
anything unexpected; ``HARDEX_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import HardexError


def _none_or(value: str) -> str | None:
    return None if value.lower() in ("none", "scratch") else value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hardex", description="hardex_nb command line")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "train",
        help="train a model on a dataset's labeled images (hx.train); "
        "under torchrun, on several processes with DDP",
    )
    t.add_argument("--dataset", required=True, help="dataset folder; the run is recorded in it")
    t.add_argument(
        "--model", help="torchvision model name (default resnet18 / fasterrcnn_resnet18_fpn)"
    )
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=32, help="per process")
    t.add_argument("--image-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument(
        "--weights",
        type=_none_or,
        default="auto",
        help="auto, none, a torchvision weights name (DEFAULT, ...) or a file",
    )
    t.add_argument("--weights-backbone", type=_none_or, default="auto")
    t.add_argument("--mode", choices=("fast", "accurate"), default="fast")
    t.add_argument("--augment", choices=("weak", "strong", "none"), default="weak")
    t.add_argument("--hard-weight", type=float, default=2.0)
    t.add_argument("--val-fraction", type=float, default=0.2)
    t.add_argument("--test", action="store_true", help="also predict the test split")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    c = sub.add_parser("collect", help="run images through a trained run and keep the hard ones")
    c.add_argument("--dataset", required=True, help="dataset folder the run was trained in")
    c.add_argument("--run", required=True, help="run version, e.g. V3")
    c.add_argument("--images", required=True, help="folder or .zip of images")
    c.add_argument("--into", required=True, help="dataset folder that receives the hard examples")
    c.add_argument(
        "--create",
        action="store_true",
        help="create --into (the run's task and labels) when it does not exist yet",
    )
    c.add_argument("--train-manifest", help="manifest of the training images (reasons 2, 3, 5)")
    c.add_argument("--all", action="store_true", help="add every image, unlabeled, no filtering")
    c.add_argument("--threshold", type=float, default=0.5)
    return parser


def _train(args) -> int:
    from .dataset import Dataset
    from .jobs import train
    from .training import engine

    rank, _ = engine.join_launch()
    try:
        ds = Dataset.open(args.dataset)
        run = train(
            ds,
            model=args.model,
            epochs=args.epochs,
            batch_size=args.batch_size,
            image_size=args.image_size,
            lr=args.lr,
            weights=args.weights,
            weights_backbone=args.weights_backbone,
            mode=args.mode,
            augment=args.augment,
            hard_weight=args.hard_weight,
            val_fraction=args.val_fraction,
            test=args.test,
            seed=args.seed,
            device=args.device,
            progress=sys.stderr.isatty(),
        )
    finally:
        if engine.world()[1] > 1:
            import torch.distributed

            torch.distributed.destroy_process_group()
    if rank == 0:
        loss = f", final loss {run.history[-1]:.4f}" if run.history else ""
        print(
            f"{run.version} {run.model_name} {run.info.get('status')}{loss}; weights in "
            f"{ds.path / str(run.info.get('weights_path'))}"
        )
    return 0


def _collect(args) -> int:
    from .dataset import Dataset
    from .jobs import Run, collect
    from .store import DB_NAME

    ds = Dataset.open(args.dataset)
    run = Run.load(ds, args.run)
    if args.create and not (Path(args.into) / DB_NAME).exists():
        into = Dataset.create(args.into, task=run.task, labels=run.labels)
        print(f"created {args.into} ({run.task}, labels {run.labels})")
    else:
        into = Dataset.open(args.into)
    report, result = collect(
        run,
        args.images,
        into=into,
        train_manifest=args.train_manifest,
        filter_hard=not args.all,
        threshold=args.threshold,
    )
    print(f"{len(report.added)} images added to {args.into}, {len(report.rejected)} rejected")
    for name, reason in report.rejected:
        print(f"  rejected {name}: {reason}")
    if result is not None and len(result.table):
        print(f"{int(result.table['hard'].sum())} of {len(result.table)} images were hard")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = {"train": _train, "collect": _collect}[args.command]
    try:
        return command(args)
    except HardexError as exc:
        print(f"hardex {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # one line, never a traceback, unless asked for
        if os.environ.get("HARDEX_DEBUG"):
            raise
        detail = " ".join(str(exc).split()) or "no message"
        print(
            f"hardex {args.command}: unexpected {type(exc).__name__}: {detail} (set "
            "HARDEX_DEBUG=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
