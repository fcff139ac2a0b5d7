"""Reading /proc cheaply: a process's memory, CPU time, state and environment, every
process's parent in one pass, and whether a pid is still the process it was."""

from __future__ import annotations

import functools
import os

import psutil

_PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
_boot: list[float] = []  # psutil.boot_time(), read once (it reads /proc/stat at each call)


def _read(path: str, whole: bool = False) -> bytes | None:
    """A /proc file with one open and one read (no file object: fewer syscalls); ``whole``:
    read on to its end (a file that may pass 4 KiB)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
        if whole and data:
            chunks = [data]
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (the state first); None
    if there is no such process."""
    data = _read(f"/proc/{pid}/stat")
    if data is None:
        return None
    fields = data.rsplit(b")", 1)[-1].split()
    return fields if len(fields) > 21 else None


def rss(pid: int) -> int:
    """Resident memory in bytes (``statm``: exact, where ``stat``'s figure is the kernel's
    per-CPU approximation), 0 if the process is gone."""
    data = _read(f"/proc/{pid}/statm")
    try:
        return int(data.split()[1]) * _PAGE if data else 0
    except (IndexError, ValueError):
        return 0


def cpu_seconds(pid: int) -> float:
    fields = stat_fields(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / TICK


def stat_usage(pid: int) -> tuple[int, int] | None:
    """(CPU time in clock ticks, the kernel's approximate RSS in bytes) of ``pid``, from one
    read of ``/proc/<pid>/stat``; None if it is gone. The approximation (per-CPU counters
    not summed) is off by at most a few hundred kilobytes; ``rss`` is exact."""
    fields = stat_fields(pid)
    if fields is None:
        return None
    return int(fields[11]) + int(fields[12]), int(fields[21]) * _PAGE


def usage(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of ``pid``; (0.0, 0) if it is gone."""
    return cpu_seconds(pid), rss(pid)


def scan_procs(above: int = 0) -> dict[int, tuple[int, int, int, int, bytes]]:
    """Every process (whose pid is over ``above``): ``{pid: (ppid, process group, session,
    start in clock ticks after boot, state letter)}``, in one pass over ``/proc``."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) <= above:
            continue
        fields = stat_fields(name)
        if fields is not None:
            out[int(name)] = (int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]),
                              fields[0])
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


class ChildFiles:
    """Every process's children as ``ppid_map`` gives them, read only for the processes
    asked about, from ``/proc/<pid>/task/<tid>/children`` (a listing and a read a thread:
    a rescan of a few trees reads a few files, not all of /proc). A child that has just
    ended may be missing; one still running is not."""

    def get(self, pid: int, default=()) -> list[int]:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return list(default)
        out: list[int] = []
        for tid in tids:
            data = _read(f"/proc/{pid}/task/{tid}/children", whole=True)
            if data:
                out += [int(p) for p in data.split()]
        return out


@functools.cache
def has_child_files() -> bool:
    """Whether this kernel has ``/proc/<pid>/task/<tid>/children`` (CONFIG_PROC_CHILDREN)."""
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")


Children = ChildFiles | dict[int, list[int]]  # what ``child_lists`` gives


def child_lists(procs: dict | None = None) -> Children:
    """Every process's children (``.get(pid, ())``): read from the children files where
    the kernel has them, else a ``ppid_map`` (of ``procs`` if given, else of a scan)."""
    return ChildFiles() if has_child_files() else ppid_map(procs)


def environ_has(pid: int, needles: tuple[bytes, ...]) -> bool:
    """Whether the initial environment of ``pid`` holds every ``NAME=value`` of ``needles``."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            block = b"\0" + f.read()
    except OSError:
        return False
    return all(b"\0" + n + b"\0" in block for n in needles)


def _boot_time(fresh: bool = False) -> float:
    if fresh or not _boot:
        _boot[:] = [psutil.boot_time()]
    return _boot[0]


def create_time(pid: int) -> float | None:
    """When ``pid`` started (epoch seconds), as ``psutil.Process(pid).create_time()``."""
    fields = stat_fields(pid)
    return None if fields is None else int(fields[19]) / TICK + _boot_time()


def same_process(pid: int | None, created: float | None) -> bool:
    """Whether ``pid`` is still the process created at ``created`` (not a reused pid), alive."""
    if not pid or created is None:
        return False
    fields = stat_fields(pid)
    if fields is None or fields[0] == b"Z":
        return False
    started = int(fields[19]) / TICK
    # the boot time read again before saying no: the clock may have been set since
    return (abs(started + _boot_time() - created) < 0.05
            or abs(started + _boot_time(fresh=True) - created) < 0.05)


def state_of(pid: int) -> bytes | None:
    fields = stat_fields(pid)
    return None if fields is None else fields[0]
