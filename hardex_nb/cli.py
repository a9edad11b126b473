"""The ``hardex`` command: batch hard-example collection outside a notebook.

    hardex collect --dataset DS --run V3 --images FOLDER_OR_ZIP --into TARGET_DS
                   [--train-manifest FILE] [--all] [--threshold 0.5]
"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import HardexError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hardex", description="hardex_nb command line")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="run images through a trained run and keep the hard ones")
    c.add_argument("--dataset", required=True, help="dataset folder the run was trained in")
    c.add_argument("--run", required=True, help="run version, e.g. V3")
    c.add_argument("--images", required=True, help="folder or .zip of images")
    c.add_argument("--into", required=True, help="dataset folder that receives the hard examples")
    c.add_argument("--train-manifest", help="manifest of the training images (reasons 2, 3, 5)")
    c.add_argument("--all", action="store_true", help="add every image, unlabeled, no filtering")
    c.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args(argv)
    from .dataset import Dataset
    from .jobs import Run, collect

    try:
        ds = Dataset.open(args.dataset)
        run = Run.load(ds, args.run)
        into = Dataset.open(args.into)
        report, result = collect(run, args.images, into=into, train_manifest=args.train_manifest,
                                 filter_hard=not args.all, threshold=args.threshold)
    except HardexError as exc:
        print(f"hardex collect: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # one line, never a traceback, unless asked for
        if os.environ.get("HARDEX_DEBUG"):
            raise
        detail = " ".join(str(exc).split()) or "no message"
        print(f"hardex collect: unexpected {type(exc).__name__}: {detail} (set HARDEX_DEBUG=1 "
              "for the traceback and report it)", file=sys.stderr)
        return 1
    print(f"{len(report.added)} images added to {args.into}, {len(report.rejected)} rejected")
    for name, reason in report.rejected:
        print(f"  rejected {name}: {reason}")
    if result is not None and len(result.table):
        print(f"{int(result.table['hard'].sum())} of {len(result.table)} images were hard")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
