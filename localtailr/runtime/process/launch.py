"""Starting a run: ``start_run(home, run_id)`` takes a run from ``pending`` to a started
process (its image built or taken from the cache, ``launch.json`` written, the process
started in its own session and process group in ``runs/<id>/``, stdout and stderr to
files there) and returns its ``Supervised``. It is generic: a run with a ``task_name`` (a
workflow task) runs ``localtailr.runtime.workflows.task_runner`` through the same
bootstrap; apps and add-ins get a free port. Also what a run's end is read from: its
failure reason and the tail of its log."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from ...core import settings
from ...core.entrypoints import infer_framework
from ...core.home import Home
from ...store import runs as run_state
from ..images.cache import MARKER, ensure_image, image_key
from .cpu_limit import CORES, cgroup_for
from .environ import base_environ, job_environ
from .forkserver_pool import ForkError, Unavailable
from .procfs import create_time
from .run_info import LaunchError, RunInfo, limits, prepare
from .supervised import Supervised

BOOTSTRAP = str(Path(__file__).with_name("bootstrap.py"))


APP_TYPES = ("app", "excel")


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


def launch(home: Home, info: RunInfo, image, forkservers=None) -> Supervised:
    """Start the run's process (state ``starting``; ``running`` for batch jobs and
    services once started, for apps and add-ins once their port answers).

    Batch jobs and workflow tasks are forked by the image's fork server when
    ``forkservers`` (a ``forkservers.ForkServers``) has a ready one; else spawned."""
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
                   "prefix": (f"/job/{info.environment}/{info.job_name}/"
                              if info.job_type == "app" else None),
                   "task": {"run_id": info.run_id, "name": info.task_name} if is_task else None,
                   "log_cap": settings.LOG_CAP.whole()}
    (run_dir / "launch.json").write_text(json.dumps(launch_data))
    env = job_environ(home, info, image, port)
    server = None
    if forkservers is not None and (is_task or info.job_type == "batch"):
        server = forkservers.get(image.python, lambda: image.environ(base_environ()),
                                 "task" if is_task else "batch")
    proc = pid = None
    asked = time.monotonic()  # before the process exists (Supervised.leftover_scan)
    if server is not None:
        try:
            pid, since = server.fork(run_dir, env, run_dir, run_dir / "stdout",
                                     run_dir / "stderr")
            if since is not None:  # a spare, forked before it was asked for
                asked = min(asked, since)
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
        return _started(home, info, image, pid, proc, server, port, is_task, asked)
    except BaseException:
        for kill in (os.killpg, os.kill):  # started, not recorded: it must not run on
            try:                           # unsupervised (a forked child may not lead its
                kill(pid, signal.SIGKILL)  # group yet)
            except OSError:
                pass
        raise


def _started(home: Home, info: RunInfo, image, pid: int, proc, server, port: int | None,
             is_task: bool, asked: float) -> Supervised:
    """The handle on a process just started for ``info`` (its pid given after ``asked``,
    monotonic time), its state recorded."""
    memory, memory_text, cpu = limits(info.definition, info.task_name)
    created = create_time(pid) or time.time()
    sv = Supervised(home, info.run_id, info.job_id, info.job_type, pid, created,
                    memory, memory_text, cpu, port=port, proc=proc, forkserver=server,
                    pid_since=asked)
    sv.cgroup = cgroup_for(info.run_id, cpu if cpu is not None and cpu < CORES else None, pid)
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
