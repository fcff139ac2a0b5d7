"""Starting a run and watching its process tree.

``start_run(home, run_id)`` takes a run from ``pending`` to a started process (its image
built or taken from the cache, ``launch.json`` written, the process started in its own
session and process group in ``runs/<id>/``, stdout and stderr to files there) and
returns a ``Supervised``: the daemon's handle on the process tree, which it samples on
every tick (memory, CPU, the tree's members) and stops. It is generic: a run with a
``task_name`` (a workflow task) runs ``localtailr.runtime.workflows.task_runner`` through the
same bootstrap; apps and add-ins get a free port.

Limits: memory is the sum of RSS over the tree; over the limit the tree is killed at the
next sample (every ``SAMPLE_EVERY`` s). CPU is held by cgroups v2 where this machine
delegates a writable cgroup (``cpu.max``), else by a duty-cycle throttle: a token bucket
over the tree's CPU time that stops the process group (SIGSTOP) when it is over budget
and continues it (SIGCONT) when the budget has refilled.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ... import store
from ...core import settings
from ...core.entrypoints import infer_framework
from ...core.home import USER_UMASK_VAR, Home
from ...core.image_spec import ImageSpec
from ...core.resources import format_memory, parse_cpu, parse_memory
from ...platform.jobs import job_environment_vars
from ...store import runs as run_state
from ..images.cache import MARKER, ensure_image, image_key

PUMP_DRAIN_WAIT = 2.0  # seconds an ended run's log pump is given to write what it holds
SAMPLE_EVERY = 0.1  # seconds between samples of a busy run, or one near its memory limit
IDLE_SAMPLE_EVERY = 0.4  # ... of a run idle and under half its memory limit; doubled while
IDLE_SAMPLE_MAX = 1.6  # it stays idle, up to this, on a grid shared by all idle runs (one wake-up)
TREE_EVERY = 1.0  # seconds between full rescans of a busy run's process tree
IDLE_TREE_EVERY = 10.0  # ... of an idle run (a rescan reads every process's /proc/<pid>/stat)
METRIC_EVERY = 2.0  # seconds between run_metrics rows (when the figures changed)
METRIC_STEADY_EVERY = 60.0  # ... when they did not: rows only on change, and this often
METRIC_ROWS = 720  # rows kept per run (older ones thinned)
BURST = 0.2  # seconds of the CPU limit a throttled tree may use ahead of its budget
ROTATE_STOP_WAIT = 0.2  # seconds to wait for a tree to stop before rotating its logs
BOOTSTRAP = str(Path(__file__).with_name("bootstrap.py"))
APP_TYPES = ("app", "excel")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


class LaunchError(Exception):
    """A run could not be started; the message is the run's reason."""


# -- reading /proc cheaply -------------------------------------------------------------


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def scan_procs() -> dict[int, tuple[int, int, int, int, bytes]]:
    """Every process: ``{pid: (ppid, process group, session, start in clock ticks after
    boot, state letter)}``, in one pass over ``/proc``."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            out[int(name)] = (int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]),
                              fields[0])
        except (OSError, IndexError, ValueError):
            continue
    return out


def ppid_map(procs: dict | None = None) -> dict[int, list[int]]:
    """Every process's children, by parent pid (one pass over /proc, or ``procs``)."""
    out: dict[int, list[int]] = {}
    for pid, fields in (scan_procs() if procs is None else procs).items():
        out.setdefault(fields[0], []).append(pid)
    return out


def _environ_has(pid: int, needles: tuple[bytes, ...]) -> bool:
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


# -- CPU limiting ----------------------------------------------------------------------


def _cgroup_v2_base() -> Path | None:
    root = Path("/sys/fs/cgroup")
    if not (root / "cgroup.controllers").exists():
        return None  # cgroup v1 or hybrid: no unified hierarchy with controllers here
    try:
        own = next(line.split("::", 1)[1].strip() for line in
                   Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::"))
    except (OSError, StopIteration):
        return None
    base = root / own.lstrip("/") / "localtailr"
    try:
        base.mkdir(exist_ok=True)
        if "cpu" not in (base / "cgroup.controllers").read_text().split():
            return None
        (base / "cgroup.subtree_control").write_text("+cpu")
        return base
    except OSError:
        return None


_limiting: list = []


def cpu_limiting() -> str:
    """How CPU limits are held on this machine: "cgroups v2" or "psutil throttle"."""
    if not _limiting:
        _limiting.append(_cgroup_v2_base())
    return "cgroups v2" if _limiting[0] is not None else "psutil throttle"


def containment() -> str:
    """How every process of a run is found and ended with the run: "cgroups v2" (a cgroup
    a run, where this machine delegates one) or "run marker + process tree" (the run's
    process group and session, its tree as sampled, and every process whose initial
    environment carries the run's ``LOCALTAILR_RUN_ID``, which forks inherit; fork server
    children write their run's id into that block)."""
    return "cgroups v2" if cpu_limiting() == "cgroups v2" else "run marker + process tree"


def _cgroup_for(run_id: int, cpu: float | None, pid: int) -> Path | None:
    """The run's own cgroup (holding ``pid``, with ``cpu`` cores as its ``cpu.max``),
    where this machine delegates cgroups v2."""
    if cpu_limiting() != "cgroups v2":
        return None
    group = _limiting[0] / f"run-{run_id}"
    try:
        group.mkdir(exist_ok=True)
        if cpu is not None:
            period = 100_000
            (group / "cpu.max").write_text(f"{int(cpu * period)} {period}")
        (group / "cgroup.procs").write_text(str(pid))
        return group
    except OSError:
        return None


def _cgroup_pids(group: Path | None) -> list[int]:
    if group is None:
        return []
    try:
        return [int(p) for p in (group / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


# -- the run's definition --------------------------------------------------------------


@dataclass
class RunInfo:
    """What starting a run needs, read from its rows."""

    run_id: int
    job_id: int
    job_name: str
    job_type: str
    environment: str
    version: int
    definition: dict
    params: dict
    run_as: str
    parent_run_id: int | None
    task_name: str | None
    restarts: int


_definitions: dict[tuple, dict] = {}


def definition_of(home: Home, job_id: int, version: int) -> dict | None:
    """The parsed definition of a job version (cached: a version never changes; the caller
    must not change it); None if there is no such version.

    The cache key holds the version's creation time beside its ids: a home made again
    (``localtailr reset``) numbers its jobs from 1 again, and must not find the old
    home's definitions.
    """
    conn = store.connection(home)
    row = conn.execute("SELECT created_at FROM job_versions WHERE job_id = ? AND version = ?",
                       (job_id, version)).fetchone()
    if row is None:
        return None
    key = (str(home.root), job_id, version, row[0])
    found = _definitions.get(key)
    if found is None:
        row = conn.execute(
            "SELECT definition FROM job_versions WHERE job_id = ? AND version = ?",
            (job_id, version)).fetchone()
        if row is None:
            return None
        if len(_definitions) > 500:
            _definitions.clear()
        found = _definitions[key] = json.loads(row[0])
    return found


def load_run(home: Home, run_id: int) -> RunInfo:
    conn = store.connection(home)
    row = conn.execute(
        "SELECT r.*, j.name AS job_name, j.type AS job_type, "
        "u.name AS user_name, u.disabled AS user_disabled FROM runs r "
        "JOIN jobs j ON j.job_id = r.job_id "
        "LEFT JOIN users u ON u.user_id = r.run_as WHERE r.run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise LaunchError(f"run {run_id} does not exist")
    definition = definition_of(home, row["job_id"], row["version"])
    if definition is None:
        raise LaunchError(f"job version {row['version']} of {row['job_name']!r} does not exist")
    run_as = definition.get("run_as") or row["user_name"]
    if run_as:
        user = conn.execute("SELECT name, disabled FROM users WHERE name = ?",
                            (run_as,)).fetchone()
        if user is None:
            raise LaunchError(f"unknown run_as user {run_as!r}: no such user")
        if user["disabled"]:
            raise LaunchError(f"run_as user {run_as!r} is disabled")
    else:
        raise LaunchError(f"the run's user (id {row['run_as']}) does not exist")
    try:
        params = json.loads(row["params"] or "{}")
    except ValueError:
        params = {}
    return RunInfo(run_id, row["job_id"], row["job_name"], row["job_type"], row["environment"],
                   row["version"], definition, params if isinstance(params, dict) else {},
                   run_as, row["parent_run_id"], row["task_name"], row["restarts"])


def image_spec(definition: dict):
    """The ImageSpec of a definition (an empty image when it has none)."""
    return ImageSpec.from_image_dict(definition.get("image") or {})


def image_ready(home: Home, spec) -> bool:
    """Whether the spec's environment is in the cache already (no build needed)."""
    try:
        return (home.venvs / image_key(spec) / MARKER).exists()
    except Exception:  # noqa: BLE001 - an interpreter lookup error shows when building
        return False


def build_image(home: Home, spec, log_to: Path | None = None):
    """Build (or take from the cache) the run's environment; LaunchError if it fails."""
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if log_to is not None:
            with open(log_to, "a") as f:
                f.write(f"localtailr: {line}\n")  # progress lines start "image <key>: "

    try:
        return ensure_image(home, spec, progress)
    except Exception as exc:  # noqa: BLE001 - the build's own error is the reason
        raise LaunchError(f"image build failed: {exc}") from exc


def framework_of(info: RunInfo) -> str | None:
    given = info.definition.get("framework")
    if given:
        return str(given).lower()
    return infer_framework(info.definition.get("entrypoint") or {})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_answers(port: int, timeout: float = 0.05) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def base_environ() -> dict[str, str]:
    """The daemon's environment without the variables of localtailr, the platform, pytest."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("DATATAILR_", "LOCALTAILR_", "PYTEST_"))}


def job_environ(home: Home, info: RunInfo, image, port: int | None) -> dict[str, str]:
    """The process's environment: the image's, the job's env_vars, then the platform's
    contract (``DATATAILR_*``, ``PORT``, ``LOCALTAILR_*``)."""
    env = image.environ(base_environ())
    definition = {**info.definition, "name": info.job_name, "type": info.job_type,
                  "environment": info.environment, "run_as": info.run_as}
    run = {"run_id": info.run_id, "version": info.version, "params": info.params, "port": port}
    env.update(job_environment_vars(definition, run, home))
    env["LOCALTAILR_PARAMS"] = json.dumps(info.params)
    env["PYTHONUNBUFFERED"] = "1"
    if port is not None:
        env["PORT"] = env["DATATAILR_SERVICE_PORT"] = str(port)
    for var in ("LOCALTAILR_WHEELHOUSE", "LOCALTAILR_OFFLINE", USER_UMASK_VAR):
        if var in os.environ:
            env[var] = os.environ[var]
    return env


# -- the supervised process tree -------------------------------------------------------


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
    proc: object = None  # subprocess.Popen when this daemon started it
    adopted: bool = False
    state: str = "running"
    started: float = field(default_factory=time.monotonic)
    tree: dict[int, float] = field(default_factory=dict)  # pid -> create time
    peak_rss: int = 0
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
    forkserver: object = None  # the ForkServer that forked it (its parent), if one did
    pump: int | None = None  # the pid of the run's log pump, once known (not in the tree)

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
        deadline = time.monotonic() + timeout
        while pump is not None and _state(pump) not in (b"Z", b"X", None):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def refresh_tree(self, children: dict[int, list[int]]) -> None:
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
        return sum(_rss(p) for p in self.tree)

    def cpu_seconds(self) -> float:
        return sum(_cpu_seconds(p) for p in self.tree)

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

    def leftovers(self, procs: dict | None = None) -> list[int]:
        """Processes of this run still alive: members of the tree, of its process group or
        session, and any process carrying its ``LOCALTAILR_RUN_ID`` (a grandchild that
        left both). ``procs`` is a ``scan_procs()`` to reuse."""
        procs = scan_procs() if procs is None else procs
        out = [p for p, c in self.tree.items() if same_process(p, c)]
        # a process that carries the run's id was started after the run's process
        since = (self.created - psutil.boot_time() - 1.0) * _TICK
        needles = (f"LOCALTAILR_RUN_ID={self.run_id}".encode(),
                   f"LOCALTAILR_HOME={self.home.root}".encode())
        me = os.getpid()
        held = set(_cgroup_pids(self.cgroup))
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
            elif sid == self.pid or (start >= since and _environ_has(pid, needles)):
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

    def sample(self, now: float, children: dict[int, list[int]] | None) -> str | None:
        """One look at the tree: update peaks, throttle, and return a kill reason if the
        memory limit is exceeded (the tree is killed already then)."""
        if children is not None:
            self.refresh_tree(children)
        rss = self.rss()
        self.peak_rss = max(self.peak_rss, rss)
        if self.memory_limit and rss > self.memory_limit and self.killed_reason is None:
            self.kill_tree()
            self.killed_reason = (f"killed: memory limit {self.memory_text} exceeded "
                                  f"(peak {format_memory(self.peak_rss)})")
            return self.killed_reason
        cpu = self.cpu_seconds()
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
        return (math.floor(now / interval) + 1) * interval

    def tree_interval(self) -> float:
        return IDLE_TREE_EVERY if self.idle and self.state == "running" else TREE_EVERY

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
        cpu, rss = max(0.0, cpu_now - before) / max(now - at, 1e-6), self.rss()
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
            if all(_state(pid) in (b"T", b"t", b"Z", b"X", None) for pid in self.tree):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)


def _state(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


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


def limits(definition: dict, task_name: str | None = None) -> tuple[int | None, str, float | None]:
    """The run's memory limit (bytes, text) and CPU cores: a workflow task's own where its
    node gives them, else the job's ``resources``."""
    res = dict(definition.get("resources") or {})
    nodes = (definition.get("workflow") or {}).get("nodes") or []
    for node in nodes:
        if task_name is not None and node.get("name") == task_name:
            res.update({k: node[k] for k in ("memory", "cpu") if node.get(k) not in (None, "")})
    memory = res.get("memory")
    mem = parse_memory(memory) if memory not in (None, "") else None
    cpu = parse_cpu(res["cpu"]) if res.get("cpu") not in (None, "") else None
    return mem, (format_memory(mem) if mem else ""), cpu


# -- starting --------------------------------------------------------------------------


def prepare(home: Home, run_id: int) -> tuple[RunInfo, object]:
    """The run's info and image spec (LaunchError for an unknown user, a bad definition)."""
    info = load_run(home, run_id)
    try:
        spec = image_spec(info.definition)
        limits(info.definition, info.task_name)
    except (ValueError, TypeError) as exc:
        raise LaunchError(f"invalid definition: {exc}") from exc
    return info, spec


def launch(home: Home, info: RunInfo, image, forkservers=None) -> Supervised:
    """Start the run's process (state ``starting``; ``running`` for batch jobs and
    services once started, for apps and add-ins once their port answers).

    Batch jobs and workflow tasks are forked by the image's fork server when
    ``forkservers`` (a ``forkservers.ForkServers``) has a ready one; else spawned."""
    import subprocess

    from .forkserver_pool import ForkError, Unavailable

    run_dir = home.run_dir(info.run_id)
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in ("failure.json", "exit"):
        try:
            (run_dir / stale).unlink()
        except FileNotFoundError:
            pass
    entry = info.definition.get("entrypoint") or {}
    is_task = bool(info.task_name) and info.parent_run_id is not None
    if not entry and not is_task:
        raise LaunchError("the definition has no entrypoint")
    framework = framework_of(info) if info.job_type == "app" else None
    if info.job_type == "app" and framework is None and not is_task:
        raise LaunchError(f"cannot tell the framework of app entrypoint {entry.get('module')!r}: "
                          "give framework= (streamlit, dash, flask, fastapi, panel)")
    port = free_port() if info.job_type in APP_TYPES or info.job_type == "service" else None
    launch_data = {"run_id": info.run_id, "home": str(home.root), "type": info.job_type,
                   "framework": framework, "port": port, "entrypoint": entry,
                   "task": {"run_id": info.run_id, "name": info.task_name} if is_task else None,
                   "log_cap": settings.LOG_CAP.whole()}
    (run_dir / "launch.json").write_text(json.dumps(launch_data))
    env = job_environ(home, info, image, port)
    server = None
    if forkservers is not None and (is_task or info.job_type == "batch"):
        server = forkservers.get(image.python, lambda: image.environ(base_environ()),
                                 "task" if is_task else "batch")
    proc = pid = None
    if server is not None:
        try:
            pid = server.fork(run_dir, env, run_dir, run_dir / "stdout", run_dir / "stderr")
        except ForkError as exc:
            raise LaunchError(str(exc)) from None
        except Unavailable:
            server = None
    if pid is None:
        out = open(run_dir / "stdout", "ab")
        err = open(run_dir / "stderr", "ab")
        try:
            proc = subprocess.Popen(
                [image.python, BOOTSTRAP, str(run_dir)], cwd=run_dir, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
                close_fds=True)
        except OSError as exc:
            raise LaunchError(f"cannot start {image.python}: {exc}") from exc
        finally:
            out.close()
            err.close()
        pid = proc.pid
    try:
        return _started(home, info, image, pid, proc, server, port, is_task)
    except BaseException:
        for kill in (os.killpg, os.kill):  # started, not recorded: it must not run on
            try:                           # unsupervised (a forked child may not lead its
                kill(pid, signal.SIGKILL)  # group yet)
            except OSError:
                pass
        raise


def _started(home: Home, info: RunInfo, image, pid: int, proc, server, port: int | None,
             is_task: bool) -> Supervised:
    """The handle on a process just started for ``info``, its state recorded."""
    memory, memory_text, cpu = limits(info.definition, info.task_name)
    created = create_time(pid) or time.time()
    sv = Supervised(home, info.run_id, info.job_id, info.job_type, pid, created,
                    memory, memory_text, cpu, port=port, proc=proc, forkserver=server)
    sv.cgroup = _cgroup_for(info.run_id, cpu if cpu is not None and cpu < CORES else None, pid)
    waits_for_port = info.job_type in APP_TYPES and not is_task
    sv.state = "starting" if waits_for_port else "running"
    how = f", forked by fork server pid {server.pid}" if server is not None else ""
    run_state.transition(
        home, info.run_id, sv.state,
        f"pid {pid}{how}" + (f", waiting for port {port}" if waits_for_port else ""),
        pid=pid, pid_create_time=created, port=port, started_at=time.time(),
        image_key=image.key)
    return sv


def start_run(home: Home, run_id: int) -> Supervised:
    """Take a pending run to a started process, building its image if needed (blocking).

    Raises LaunchError (the run is then ``failed`` with that reason)."""
    try:
        if not run_state.transition(home, run_id, "building", only_from=("pending", "building")):
            raise LaunchError(f"run {run_id} is no longer pending (stopped before it started)")
        info, spec = prepare(home, run_id)
        image = build_image(home, spec, home.run_dir(run_id) / "stderr")
        return launch(home, info, image)
    except LaunchError as exc:
        run_state.transition(home, run_id, "failed", str(exc))
        raise


BUILD_LINE_PREFIX = "localtailr: image "  # how build progress lines start in a run's stderr


def failure_reason(run_dir: Path, code: int | None) -> str:
    """The reason of a run that ended with ``code``: what the bootstrap wrote, the code,
    and for a failure the last line of stderr."""
    try:
        written = json.loads((run_dir / "failure.json").read_text()).get("reason")
    except (OSError, ValueError):
        written = None
    if code == -999:
        text = "exit code unknown (the process ended while the daemon was adopting it)"
    elif code is not None and code < 0:
        text = f"killed by signal {signal.Signals(-code).name}" if -code in signal.valid_signals() \
            else f"killed by signal {-code}"
    else:
        text = f"exit code {code}"
    if written:
        return f"{text}: {written}" if not written.startswith("cannot import") else written
    if code not in (0, None):
        # the job's own last line, not the image build's progress written before it started
        tail = [line for line in log_tail(run_dir / "stderr", 20)
                if not line.startswith(BUILD_LINE_PREFIX)]
        if tail:
            return f"{text}: {tail[-1][:300]}"
    return text


def log_tail(path: Path, lines: int = 10) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 8192))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in data.splitlines() if line.strip()][-lines:]
