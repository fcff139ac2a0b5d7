"""The supervised process tree: the daemon's handle on a started (or adopted) run, which it
samples on every tick (memory, CPU, the tree's members), throttles, rotates the logs of
and stops.

Limits: memory is the sum of RSS over the tree; over the limit the tree is killed at the
next sample (every ``SAMPLE_EVERY`` s). CPU is held by cgroups v2 where this machine
delegates a writable cgroup (``cpu.max``, see ``cpu_limit``), else by a duty-cycle
throttle: a token bucket over the tree's CPU time that stops the process group (SIGSTOP)
when it is over budget and continues it (SIGCONT) when the budget has refilled.
"""

from __future__ import annotations

import math
import os
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ...core import settings
from ...core.home import Home
from ...core.resources import format_memory
from . import procfs
from .cpu_limit import CORES, cgroup_pids
from .forkserver_pool import ForkServer
from .procfs import TICK, create_time, environ_has, same_process, scan_procs, state_of

PUMP_DRAIN_WAIT = 2.0  # seconds an ended run's log pump is given to write what it holds
SAMPLE_EVERY = 0.1  # seconds between samples of a busy run, or one near its memory limit
IDLE_SAMPLE_EVERY = 0.5  # ... of a run idle and under half its memory limit; doubled while
IDLE_SAMPLE_MAX = 1.0  # it stays idle, up to this, on a grid shared by all idle runs and the
# daemon's once-a-second pass (``on_grid``): one wake-up a second samples them all
TREE_EVERY = 1.0  # seconds between full rescans of a busy run's process tree
IDLE_TREE_EVERY = 10.0  # ... of an idle run (a rescan reads every process's /proc/<pid>/stat)
METRIC_EVERY = 2.0  # seconds between run_metrics rows (when the figures changed)
METRIC_STEADY_EVERY = 60.0  # ... when they did not: rows only on change, and this often
METRIC_ROWS = 720  # rows kept per run (older ones thinned)
BURST = 0.2  # seconds of the CPU limit a throttled tree may use ahead of its budget
ROTATE_STOP_WAIT = 0.2  # seconds to wait for a tree to stop before rotating its logs
RSS_SLACK = 1 << 20  # bytes the approximate RSS of /proc/<pid>/stat may move with no new exact read
FORK_RATE = 200_000  # processes a second: more than any machine starts (see leftover_scan)


def on_grid(now: float, interval: float) -> float:
    """The first multiple of ``interval`` after ``now``: what is timed on one grid (idle
    runs' samples and rescans, the daemon's periodic pass) is done in one wake-up."""
    return (math.floor(now / interval) + 1) * interval


@dataclass
class Supervised:
    """A started (or adopted) run's process tree and what the daemon knows of it."""

    home: Home
    run_id: int
    job_id: int
    job_type: str
    pid: int
    created: float
    memory_limit: int | None
    memory_text: str
    cpu_limit: float | None
    port: int | None = None
    url: str | None = None  # recorded once the port answers
    proc: subprocess.Popen | None = None  # when this daemon started it
    adopted: bool = False
    state: str = "running"
    started: float = field(default_factory=time.monotonic)
    tree: dict[int, float] = field(default_factory=dict)  # pid -> create time
    peak_rss: int = 0
    last_rss: int = 0  # as of the last sample
    peak_cpu: float = 0.0
    stopping: tuple[str, float] | None = None  # (reason, SIGKILL deadline)
    killed_reason: str | None = None
    cgroup: Path | None = None
    # throttle
    credit: float = 0.0
    last_cpu: float | None = None
    last_at: float = 0.0
    paused_until: float = 0.0
    next_sample: float = 0.0
    next_tree: float = 0.0
    next_metric: float = 0.0
    metric_cpu: tuple[float, float] | None = None
    metric_rows: int = 0
    metric_last: tuple[float, float, int] | None = None  # (at, cpu, rss) of the last row
    idle_streak: int = 0  # idle samples in a row
    exit_code: int | None = None
    pidfd: int | None = None
    idle: bool = False
    forkserver: ForkServer | None = None  # the fork server that forked it (its parent), if one did
    pump: int | None = None  # the pid of the run's log pump, once known (not in the tree)
    pid_since: float | None = None  # monotonic time before its pid was given (leftover_scan)
    exact: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # pid -> (ticks,
    # approximate RSS, exact RSS) as of the last read of its statm

    def __post_init__(self) -> None:
        self.tree.setdefault(self.pid, self.created)
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except (OSError, AttributeError):
            self.pidfd = None

    @property
    def run_dir(self) -> Path:
        return self.home.run_dir(self.run_id)

    @property
    def watch_fd(self) -> int | None:
        """The descriptor that becomes readable when the process ends; None when its
        fork server (the parent) will say so instead."""
        if self.forkserver is not None and not self.forkserver.dead:
            return None
        return self.pidfd

    @property
    def throttled(self) -> bool:
        return (self.cpu_limit is not None and self.cgroup is None
                and self.cpu_limit < CORES)

    # -- liveness -------------------------------------------------------------------

    def poll(self) -> int | None:
        """The exit code if the main process has ended (-N: killed by signal N), else None.
        For an adopted process the code is what the bootstrap wrote (None if nothing)."""
        if self.exit_code is not None:
            return self.exit_code
        if self.proc is not None:
            code = self.proc.poll()
            if code is None:
                return None
            self.exit_code = code
            return code
        if self.forkserver is not None:
            code = self.forkserver.exits.pop(self.pid, None)
            if code is not None:
                self.exit_code = code
                return code
            if not self.forkserver.dead:
                return None
            # its fork server is gone: watched as an adopted process from now on
        if same_process(self.pid, self.created):
            return None
        try:
            self.exit_code = int((self.run_dir / "exit").read_text().strip())
        except (OSError, ValueError):
            self.exit_code = -999  # unknown: it ended while adopted and wrote nothing
        return self.exit_code

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    # -- the tree -------------------------------------------------------------------

    def find_pump(self) -> int | None:
        """The run's log pump (``runs/<id>/logpump``), once it has started."""
        if self.pump is None:
            try:
                self.pump = int((self.run_dir / "logpump").read_text())
            except (OSError, ValueError):
                return None
            self.tree.pop(self.pump, None)
        return self.pump

    def wait_pump(self, timeout: float = PUMP_DRAIN_WAIT) -> bool:
        """Wait (at most ``timeout`` s) for the log pump of an ended run to write what it
        still holds and end; True if it has."""
        pump = self.find_pump()
        if pump is None:
            return True
        try:
            fd = os.pidfd_open(pump)
        except ProcessLookupError:
            return True
        except (OSError, AttributeError):
            fd = None  # no pidfds here: its state is polled
        if fd is not None:
            try:  # readable once it has ended, at once
                return bool(select.select([fd], [], [], timeout)[0])
            finally:
                os.close(fd)
        deadline = time.monotonic() + timeout
        while pump is not None and state_of(pump) not in (b"Z", b"X", None):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def refresh_tree(self, children: procfs.Children) -> None:
        """Add the current descendants of every known member; forget the dead."""
        pump = self.find_pump()
        alive = {p: c for p, c in self.tree.items() if same_process(p, c)}
        stack = list(alive)
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in alive and child != pump:
                    created = create_time(child)
                    if created is not None:
                        alive[child] = created
                        stack.append(child)
        self.tree = alive or {self.pid: self.created}

    def rss(self) -> int:
        return self.usage()[1]

    def cpu_seconds(self) -> float:
        return self.usage()[0]

    def usage(self) -> tuple[float, int]:
        """(CPU seconds, RSS bytes) summed over the tree: a read of each member's
        ``/proc/<pid>/stat``, and of its ``statm`` (the exact RSS) unless the member has
        not run since the last (the same CPU time, to the tick) and its approximate RSS
        has not moved by more than RSS_SLACK: an idle member costs one read a sample."""
        ticks, rss = 0, 0
        for pid in self.tree:
            seen = procfs.stat_usage(pid)
            if seen is None:
                continue
            last = self.exact.get(pid)
            if last is None or last[0] != seen[0] or abs(last[1] - seen[1]) > RSS_SLACK:
                last = (seen[0], seen[1], procfs.rss(pid))
                self.exact[pid] = last
            ticks += seen[0]
            rss += last[2]
        if len(self.exact) > len(self.tree):
            self.exact = {p: e for p, e in self.exact.items() if p in self.tree}
        return ticks / TICK, rss

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process group and to every known member of the tree."""
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:  # a forked child in its first moment: not yet leading its own group
                if same_process(self.pid, self.created):
                    os.kill(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for pid, created in list(self.tree.items()):
            if pid != self.pid and same_process(pid, created):
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass

    def kill_tree(self) -> None:
        self.signal(signal.SIGKILL)
        self.paused_until = 0.0

    def leftover_scan(self) -> dict:
        """A ``scan_procs()`` of what may be left of the run once its main process ended.
        A process it started has a higher pid than its own unless the kernel's pid counter
        went round since; it cannot have when the counter is still above the run's pid and
        the run lived less than a round takes at FORK_RATE. Then only the pids above the
        run's are read (a task's run, ended in milliseconds, reads a handful), else all.
        (Its life is counted from ``pid_since``: ``created``, from the kernel's boot time
        in whole seconds, may be a second off.)"""
        if self.adopted or self.pid_since is None:
            return scan_procs()
        last = procfs.last_pid()
        lived = time.monotonic() - self.pid_since
        if last is not None and last >= self.pid and lived * FORK_RATE < procfs.pid_max():
            return scan_procs(above=self.pid)
        return scan_procs()

    def leftovers(self, procs: dict | None = None) -> list[int]:
        """Processes of this run still alive: members of the tree, of its process group or
        session, and any process carrying its ``LOCALTAILR_RUN_ID`` (a grandchild that
        left both). ``procs`` is a ``scan_procs()`` to reuse."""
        procs = scan_procs() if procs is None else procs
        out = [p for p, c in self.tree.items() if same_process(p, c)]
        # a process that carries the run's id was started after the run's process
        since = (self.created - psutil.boot_time() - 1.0) * TICK
        needles = (f"LOCALTAILR_RUN_ID={self.run_id}".encode(),
                   f"LOCALTAILR_HOME={self.home.root}".encode())
        me = os.getpid()
        held = set(cgroup_pids(self.cgroup))
        pump = self.find_pump()
        for pid, (_ppid, pgrp, sid, start, state) in procs.items():
            if pid in out or pid == me or pid == pump or state == b"Z":
                continue
            if pid in held:
                created = create_time(pid)
                if created is not None:
                    out.append(pid)
                    self.tree[pid] = created
                continue
            if pgrp == self.pid:
                out.append(pid)
            elif sid == self.pid or (start >= since and environ_has(pid, needles)):
                created = create_time(pid)
                if created is not None:
                    out.append(pid)
                    self.tree[pid] = created
        return out

    # -- stopping -------------------------------------------------------------------

    def request_stop(self, reason: str, grace: float) -> None:
        """SIGTERM the group now (continuing it if throttled), SIGKILL after ``grace``."""
        if self.stopping is not None:
            return
        self.stopping = (reason, time.monotonic() + grace)
        self.signal(signal.SIGTERM)
        self.signal(signal.SIGCONT)
        self.paused_until = 0.0

    # -- sampling -------------------------------------------------------------------

    def sample(self, now: float, children: procfs.Children | None) -> str | None:
        """One look at the tree: update peaks, throttle, and return a kill reason if the
        memory limit is exceeded (the tree is killed already then)."""
        if children is not None:
            self.refresh_tree(children)
        cpu, rss = self.usage()
        self.last_rss = rss
        self.peak_rss = max(self.peak_rss, rss)
        if self.memory_limit and rss > self.memory_limit and self.killed_reason is None:
            self.kill_tree()
            self.killed_reason = (f"killed: memory limit {self.memory_text} exceeded "
                                  f"(peak {format_memory(self.peak_rss)})")
            return self.killed_reason
        busy = True
        if self.last_cpu is not None and now > self.last_at:
            used = max(0.0, cpu - self.last_cpu)
            share = used / (now - self.last_at)
            self.peak_cpu = max(self.peak_cpu, share)
            busy = share > 0.05 or bool(self.memory_limit and rss > self.memory_limit // 2)
            if self.throttled and self.stopping is None:
                self._throttle(now, used)
        self.last_cpu, self.last_at = cpu, now
        self.idle = not busy
        self.idle_streak = self.idle_streak + 1 if self.idle else 0
        return None

    def sample_interval(self) -> float:
        if not (self.idle and self.state == "running"):
            return SAMPLE_EVERY
        return min(IDLE_SAMPLE_EVERY * 2 ** max(0, self.idle_streak - 1), IDLE_SAMPLE_MAX)

    def next_sample_at(self, now: float) -> float:
        """When to sample next: a busy run after SAMPLE_EVERY; an idle one at the next point
        of its interval's grid, so that idle runs are sampled together, in one wake-up."""
        interval = self.sample_interval()
        if interval <= SAMPLE_EVERY:
            return now + interval
        return on_grid(now, interval)

    def tree_interval(self) -> float:
        return IDLE_TREE_EVERY if self.idle and self.state == "running" else TREE_EVERY

    def next_tree_at(self, now: float) -> float:
        """When to rescan the tree next: a busy run's after TREE_EVERY; an idle one's at the
        next point of a grid shared by all idle runs (one scan of /proc serves them all)."""
        interval = self.tree_interval()
        if interval <= TREE_EVERY:
            return now + interval
        return on_grid(now, interval)

    def _throttle(self, now: float, used: float) -> None:
        limit = self.cpu_limit or 1.0
        self.credit = min(self.credit + limit * (now - self.last_at) - used, limit * BURST)
        if self.credit < 0 and self.paused_until <= now:
            self.paused_until = now + (-self.credit) / limit
            self.signal(signal.SIGSTOP)

    def maybe_resume(self, now: float) -> None:
        if self.paused_until and now >= self.paused_until:
            self.paused_until = 0.0
            self.signal(signal.SIGCONT)

    def next_wake(self, now: float) -> float:
        """When this run next needs the daemon's attention."""
        times = [self.next_sample]
        if self.paused_until:
            times.append(self.paused_until)
        if self.stopping:
            times.append(self.stopping[1])
        return min(times)

    def metric(self, now: float) -> tuple[float, int] | None:
        """(cpu cores over the last period, rss) every METRIC_EVERY seconds, else None."""
        if now < self.next_metric:
            return None
        self.next_metric = now + METRIC_EVERY
        cpu_now = self.last_cpu or 0.0
        if self.metric_cpu is None:
            self.metric_cpu = (now, cpu_now)
            return None
        at, before = self.metric_cpu
        self.metric_cpu = (now, cpu_now)
        cpu, rss = max(0.0, cpu_now - before) / max(now - at, 1e-6), self.last_rss
        last = self.metric_last
        if (last is not None and now - last[0] < METRIC_STEADY_EVERY and abs(cpu - last[1]) < 0.005
                and abs(rss - last[2]) <= last[2] // 100):
            return None  # nothing changed: no row (the charts join the points they have)
        self.metric_last = (now, cpu, rss)
        return cpu, rss

    def rotate_logs(self, cap: int | None = None) -> bool:
        """Rotate stdout and stderr when over ``cap`` bytes (``LOCALTAILR_LOG_CAP``), losing no line: the tree is
        stopped (SIGSTOP, unless the throttle has it stopped already) while a log is copied
        to ``*.1`` and emptied, then continued; the writers keep their O_APPEND
        descriptors and go on at the start. If the tree does not stop at once, the
        rotation waits for the next rescan. True if a log was rotated."""
        over = []
        for name in ("stdout", "stderr"):
            try:
                if os.stat(self.run_dir / name).st_size > (cap or settings.LOG_CAP.whole()):
                    over.append(self.run_dir / name)
            except OSError:
                pass
        if not over:
            return False
        paused = bool(self.paused_until)
        if not paused:
            self.signal(signal.SIGSTOP)
        try:
            if not paused and not self._stopped(ROTATE_STOP_WAIT):
                return False
            return any([rotate(path, cap) for path in over])
        finally:
            if not paused:
                self.signal(signal.SIGCONT)

    def _stopped(self, timeout: float) -> bool:
        """Wait until every member of the tree is stopped (or gone)."""
        deadline = time.monotonic() + timeout
        while True:
            if all(state_of(pid) in (b"T", b"t", b"Z", b"X", None) for pid in self.tree):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)


def rotate(path: Path, cap: int | None = None) -> bool:
    """Copy ``path`` to ``path.1`` and empty it when it is over ``cap`` bytes. Lines written
    between the copy and the truncation would be lost: the caller holds the writers
    stopped (``Supervised.rotate_logs``)."""
    try:
        if path.stat().st_size <= (cap or settings.LOG_CAP.whole()):
            return False
        shutil.copyfile(path, path.with_name(path.name + ".1"))
        os.truncate(path, 0)
        return True
    except OSError:
        return False


