"""Processes of this machine: whether one is alive, and a watchdog that ends the processes a
driver started once the driver is gone (``python processes.py DRIVER PID...``: run as a
file, it imports nothing of the package)."""

from __future__ import annotations

import os
import signal
import sys
import time


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch(driver: int, pids: list[int], *, every: float = 0.5) -> None:
    """Wait while ``driver`` runs (and is still this process's parent: a reused pid is not
    it), then end ``pids``: SIGTERM, then SIGKILL to what is left (a process-group leader's
    whole group)."""
    while pid_alive(driver) and os.getppid() == driver:
        time.sleep(every)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                if os.getpgid(pid) == pid:
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(2)


if __name__ == "__main__":
    watch(int(sys.argv[1]), [int(p) for p in sys.argv[2:]])
