"""Folders written whole or not at all: a dataset built by ``Dataset.from_files`` and every
export are written into a staging folder beside their target and renamed into place at the
end, so a process killed part-way leaves no half-written target. A staging folder is named
``.hardex-staging-<target name>.<host>.<pid>``; `sweep` removes those whose process
on this machine is gone."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from .processes import pid_alive

PREFIX = ".hardex-staging-"


def folder_for(target: Path) -> Path:
    """This process's staging folder for ``target`` (beside it: the rename stays on one
    file system). Anything this process left there before is removed."""
    path = target.parent / f"{PREFIX}{target.name}.{socket.gethostname()}.{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    return path


def sweep(folder: Path) -> list[Path]:
    """Remove the staging folders in ``folder`` that a dead process of this machine left;
    returns them."""
    host = socket.gethostname()
    gone = []
    for path in sorted(folder.glob(f"{PREFIX}*")) if folder.is_dir() else []:
        owner, _, pid = path.name.rpartition(".")
        if not owner.endswith(f".{host}") or not pid.isdigit() or pid_alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        gone.append(path)
    return gone
