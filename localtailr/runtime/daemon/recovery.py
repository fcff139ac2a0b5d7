"""Recovery after a restart: a daemon killed with SIGKILL and started again adopts the runs
whose process is still the same (pid and create time), marks the others ``lost``, and
re-queues the runs its predecessor was launching."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from ... import store
from ...core.home import Home
from ...store import job_versions
from ...store import runs as run_state
from ..process.procfs import same_process
from ..process.run_info import limits
from ..process.supervised import Supervised
from .log import log

LAUNCH_ATTEMPTS = 3  # daemon restarts during one run's launch before the run is failed
REQUEUED = "re-queued: the daemon restarted during the build"


def recover(home: Home, launch_failed: Callable[[int, str], None]) -> list[Supervised]:
    """Adopt live runs (returned), mark the dead ``lost``, re-queue interrupted builds
    (``launch_failed(run_id, reason)`` ends one cut short too often)."""
    conn = store.connection(home)
    now = time.time()
    rows = conn.execute(
        "SELECT r.run_id, r.state, r.pid, r.pid_create_time, r.port, r.url, r.version, "
        "r.restarts, r.started_at, r.task_name, j.job_id, j.type FROM runs r "
        "JOIN jobs j ON j.job_id = r.job_id "
        "WHERE r.state IN ('building', 'starting', 'running')").fetchall()
    adopted = []
    for row in rows:
        if row["state"] == "building" or (row["state"] == "starting" and not row["pid"]):
            requeue(home, row["run_id"], launch_failed)
            continue
        if row["type"] == "workflow" and row["pid"] is None:
            continue  # a workflow's parent run: the workflow runner's
        if same_process(row["pid"], row["pid_create_time"]):
            definition = job_versions.definition(conn, row["job_id"], row["version"]) or {}
            memory, memory_text, cpu = limits(definition, row["task_name"])
            sv = Supervised(home, row["run_id"], row["job_id"], row["type"], row["pid"],
                            row["pid_create_time"], memory, memory_text, cpu,
                            port=row["port"], url=row["url"], adopted=True,
                            state=row["state"])
            sv.started = time.monotonic() - max(0.0, now - (row["started_at"] or now))
            sv.signal(signal.SIGCONT)  # it may have been paused by the throttle
            adopted.append(sv)
            run_state.event(home, sv.run_id, "adopted", f"pid {sv.pid}")
            log(f"adopted run {sv.run_id} (pid {sv.pid})")
        else:
            run_state.transition(
                home, row["run_id"], "lost",
                f"lost: process gone while the daemon was down (noticed {run_state.iso(now)})")
            log(f"run {row['run_id']} lost")
    return adopted


def requeue(home: Home, run_id: int, launch_failed: Callable[[int, str], None]) -> None:
    """A run this daemon's predecessor was launching: pending again, unless launching
    it has already been cut short LAUNCH_ATTEMPTS times (it may be what killed the
    daemon): then failed, so that no restart retries it for ever."""
    tries = store.connection(home).execute(
        "SELECT count(*) FROM run_events WHERE run_id = ? AND detail = ?",
        (run_id, REQUEUED)).fetchone()[0]
    if tries >= LAUNCH_ATTEMPTS:
        launch_failed(run_id, f"failed to launch: the daemon restarted {tries + 1} "
                              "times while launching this run (see daemon.log)")
    else:
        run_state.transition(home, run_id, "pending", REQUEUED)
