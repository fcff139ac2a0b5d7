"""The daemon seen from outside: where a home's daemon is (``<home>/daemon.lock`` holds
the one-daemon-a-home lock, ``fcntl.flock``; ``<home>/daemon.json`` says where it is),
starting it detached, stopping it and whatever it left, and ``localtailr status``.

``daemon.json``::

    {"pid", "pid_create_time", "started_at", "home", "socket", "log", "url", "port",
     "cpu_limiting", "version"}
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from ... import store
from ...core import settings
from ...core.home import Home
from ...store import runs as run_state
from ..process.cpu_limit import containment, cpu_limiting
from ..process.launch import log_tail
from ..process.procfs import same_process

SHUTDOWN_REASON = "killed: the daemon was stopped (localtailr down)"


def lock_path(home: Home) -> Path:
    return home.root / "daemon.lock"


def info_path(home: Home) -> Path:
    return home.root / "daemon.json"


def log_path(home: Home) -> Path:
    return home.root / "daemon.log"


def lock_held(home: Home) -> bool:
    """Whether a daemon holds the home's lock now."""
    path = lock_path(home)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def running_info(home: Home) -> dict | None:
    """The running daemon's ``daemon.json`` (None if no daemon runs for ``home``)."""
    if not lock_held(home):
        return None
    try:
        data = json.loads(info_path(home).read_text())
    except (OSError, ValueError):
        return None
    if not same_process(data.get("pid"), data.get("pid_create_time")):
        return None
    return data


def describe(info: dict) -> str:
    where = f" at {info['url']}" if info.get("url") else ""
    return f"localtailr daemon running (pid {info['pid']}){where}; home {info['home']}, log {info['log']}"


def ensure_running(home: Home | None = None, quiet: bool = False, timeout: float = 30.0) -> dict:
    """The running daemon's info; start it detached first if none runs (one line on stderr
    says where it is). Raises RuntimeError if it does not come up."""
    home = (home or Home.current()).ensure()
    info = running_info(home)
    if info is not None:
        return info
    env = {**os.environ, "LOCALTAILR_HOME": str(home.root)}
    with os.fdopen(home.open_private(log_path(home)), "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localtailr.daemon_main", str(home.root)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True,
            cwd=str(home.root), close_fds=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = running_info(home)
        if info is not None:
            if not quiet:
                sys.stderr.write(describe(info) + "\n")
            _reap_later(proc)
            return info
        if proc.poll() is not None and not lock_held(home):
            tail = log_tail(log_path(home), 5)
            raise RuntimeError(f"the localtailr daemon did not start: {' | '.join(tail)}")
        time.sleep(0.02)
    raise RuntimeError(f"the localtailr daemon did not start within {timeout:.0f} s; "
                       f"see {log_path(home)}")


def _reap_later(proc: subprocess.Popen) -> None:
    # The detached daemon is our child until it exits: reap it so no zombie stays.
    threading.Thread(target=proc.wait, daemon=True).start()


def stop(home: Home | None = None, grace: float | None = None, timeout: float | None = None) -> bool:
    """Stop the home's daemon (``localtailr down``): its runs are stopped (SIGTERM, SIGKILL
    after the daemon's grace period; ``grace`` is how long to wait for that). True if a daemon was running. Whatever is left (a daemon that does
    not answer, runs of a daemon killed earlier) is killed here."""
    home = home or Home.current()
    grace = settings.STOP_GRACE.number() if grace is None else grace
    info = running_info(home)
    was_running = info is not None
    if info is not None:
        try:
            os.kill(info["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + (timeout if timeout is not None else grace + 15)
        while lock_held(home) and time.monotonic() < deadline:
            time.sleep(0.02)
        if lock_held(home):
            try:
                os.kill(info["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
            while lock_held(home) and time.monotonic() < deadline + 5:
                time.sleep(0.02)
    if home.db_path.exists():
        _kill_orphans(home, SHUTDOWN_REASON)
    sweep(home)
    return was_running


def _kill_orphans(home: Home, reason: str) -> None:
    """Kill the process groups of active runs no daemon supervises (after a SIGKILLed
    daemon) and mark them killed."""
    conn = store.connection(home)
    rows = conn.execute(
        "SELECT run_id, pid, pid_create_time FROM runs WHERE state IN ('starting', 'running') "
        "AND pid IS NOT NULL").fetchall()
    for row in rows:
        if same_process(row["pid"], row["pid_create_time"]):
            for sig in (signal.SIGKILL,):
                try:
                    os.killpg(row["pid"], sig)
                except (ProcessLookupError, PermissionError):
                    pass
            run_state.transition(home, row["run_id"], "killed", reason,
                                 only_from=("starting", "running"))


def sweep(home: Home, exclude: set[int] | None = None) -> list[int]:
    """Kill every process started for a run of ``home`` that is still alive (found by its
    ``LOCALTAILR_HOME`` and ``LOCALTAILR_RUN_ID`` variables); return their pids."""
    me = os.getpid()
    exclude = exclude or set()
    killed = []
    root = str(home.root)
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me or proc.pid in exclude:
            continue
        try:
            env = proc.environ()
        except (psutil.Error, OSError):
            continue
        if env.get("LOCALTAILR_HOME") == root and env.get("LOCALTAILR_RUN_ID"):
            try:
                proc.kill()
                killed.append(proc.pid)
            except psutil.Error:
                pass
    return killed


def status(home: Home | None = None) -> dict:
    """What ``localtailr status`` shows: the daemon (if running) and the runs by state."""
    home = home or Home.current()
    info = running_info(home)
    conn = store.connection(home)
    by_state = {r[0]: r[1] for r in conn.execute(
        "SELECT state, count(*) FROM runs GROUP BY state ORDER BY state")}
    out: dict[str, Any] = {"running": info is not None, "home": str(home.root)}
    if info is not None:
        out.update(pid=info["pid"], uptime=round(time.time() - info["started_at"], 1),
                   url=info.get("url"), log=info.get("log"),
                   cpu_limiting=info.get("cpu_limiting"))
    else:
        out["cpu_limiting"] = cpu_limiting()
    out["containment"] = containment()
    out["runs"] = by_state
    return out
