"""Reading /proc cheaply: a process's memory, CPU time, state and environment, every
process's parent in one pass, and whether a pid is still the process it was."""

from __future__ import annotations

import functools
import os

import psutil

_PAGE = os.sysconf("SC_PAGE_SIZE")


TICK = os.sysconf("SC_CLK_TCK")


def rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def scan_procs(above: int = 0) -> dict[int, tuple[int, int, int, int, bytes]]:
    """Every process (whose pid is over ``above``): ``{pid: (ppid, process group, session,
    start in clock ticks after boot, state letter)}``, in one pass over ``/proc``."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) <= above:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            out[int(name)] = (int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]),
                              fields[0])
        except (OSError, IndexError, ValueError):
            continue
    return out


def last_pid() -> int | None:
    """The pid the kernel gave last (in this pid namespace), from ``/proc/loadavg``."""
    try:
        with open("/proc/loadavg", "rb") as f:
            return int(f.read().split()[-1])
    except (OSError, IndexError, ValueError):
        return None


@functools.cache
def pid_max() -> int:
    """The kernel's highest pid (after which it wraps round to low ones)."""
    try:
        with open("/proc/sys/kernel/pid_max", "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 32768


def ppid_map(procs: dict | None = None) -> dict[int, list[int]]:
    """Every process's children, by parent pid (one pass over /proc, or ``procs``)."""
    out: dict[int, list[int]] = {}
    for pid, fields in (scan_procs() if procs is None else procs).items():
        out.setdefault(fields[0], []).append(pid)
    return out


def environ_has(pid: int, needles: tuple[bytes, ...]) -> bool:
    """Whether the initial environment of ``pid`` holds every ``NAME=value`` of ``needles``."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            block = b"\0" + f.read()
    except OSError:
        return False
    return all(b"\0" + n + b"\0" in block for n in needles)


def create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def same_process(pid: int | None, created: float | None) -> bool:
    """Whether ``pid`` is still the process created at ``created`` (not a reused pid), alive."""
    if not pid or created is None:
        return False
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - created) < 0.05 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def state_of(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
