"""Which process holds a lock row, and whether that process still runs.

A lock row (the customer's billing lock) names its holder: the machine's boot, the process id and
the process's start time (``boot:pid:start``). Another process on the same machine can then tell a
holder that was killed (its pid is gone, or now belongs to a process that started later) from one
that is working, and take a dead holder's lock at once instead of waiting for the row to age out.
A holder on another machine (PostgreSQL shared by several hosts) cannot be checked from here: it
counts as running, and only the row's age frees its lock. Without ``/proc`` (not Linux) every
holder counts as running, as before holders were recorded.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

_PROC = Path("/proc")


def _boot_id() -> str | None:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _started(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), or None when there is none."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Fields after the command name (in parentheses, which may itself hold spaces): start time is 22nd.
    return stat.rsplit(")", 1)[1].split()[19]


def this_process() -> str:
    """This process as a lock holder (a forked worker is a holder of its own: keyed by pid)."""
    return _own_identity(os.getpid())


@functools.cache
def _own_identity(pid: int) -> str:
    return process_identity(pid)


def process_identity(pid: int) -> str:
    """Process ``pid`` as a lock holder: ``boot:pid:start`` (``"unknown:pid"`` without ``/proc``)."""
    boot, started = _boot_id(), _started(pid)
    if boot is None or started is None:
        return f"unknown:{pid}"
    return f"{boot}:{pid}:{started}"


def is_running(holder: str | None) -> bool:
    """Whether ``holder`` may still be working: False only for a holder on this machine that is gone."""
    if holder is None:
        return True
    parts = holder.split(":")
    boot = _boot_id()
    if len(parts) != 3 or boot is None or parts[0] != boot:
        return True
    pid, started = parts[1], parts[2]
    return pid.isdigit() and _started(int(pid)) == started
