"""Restart policy: a service, app or add-in whose ``desired_state`` is ``running`` is kept
running. A process that ended is followed by the next run of the job's current version,
at once the first time and then with backoff (``restart_delay``); quick restarts in a row
mark the job crash-looping. A stop request ends a run for good."""

from __future__ import annotations

import time
from collections.abc import Iterable

from ... import store
from ...core.home import Home
from ...core.runs import LONG_RUNNING
from ...store import runs as run_state
from ..process.launch import BUILD_LINE_PREFIX, log_tail
from .log import log

STABLE_AFTER = 60.0  # a long-running process up this long resets its backoff


BACKOFF_CAP = 30.0


CRASH_LOOP_AFTER = 3  # quick restarts in a row before a job is shown crash-looping


def restart_delay(restarts: int, uptime: float) -> tuple[int, float]:
    """The quick-restart count and the delay (s) of the next restart of a long-running job
    whose process, itself restart number ``restarts``, ended after ``uptime`` seconds: at
    once for the first, then 1, 2, 4 ... s up to BACKOFF_CAP; up STABLE_AFTER s resets it."""
    quick = 0 if uptime >= STABLE_AFTER else restarts + 1
    return quick, 0.0 if quick <= 1 else min(BACKOFF_CAP, 2.0 ** (quick - 2))


def stop_requests(home: Home, run_ids: Iterable[int]) -> dict[int, str]:
    """The runs of ``run_ids`` whose stop was requested, with the reason each ends with."""
    run_ids = list(run_ids)
    if not run_ids:
        return {}
    conn = store.connection(home)
    marks = ",".join("?" * len(run_ids))
    out = {}
    for row in conn.execute(
            f"SELECT run_id, detail FROM run_events WHERE state = 'stop-requested' "
            f"AND run_id IN ({marks}) ORDER BY at", run_ids):
        detail = (row["detail"] or "").strip()
        if not detail:
            out[row["run_id"]] = "stopped"
        elif detail.startswith(("stopped", "killed")):
            out[row["run_id"]] = detail
        else:
            out[row["run_id"]] = f"stopped: {detail}"  # "new version 2 by alice" ...
    return out


def queue_restart(home: Home, run_id: int, uptime: float, code: int | None = None,
                  stopped: bool = False) -> tuple[int, float] | None:
    """A long-running job's process ended: queue the next run (of the job's current
    version, with backoff) if the job should still be running and nothing newer is; its
    id and the delay (s) before it may start (None if none was queued)."""
    conn = store.connection(home)
    row = conn.execute(
        "SELECT r.*, j.type, j.desired_state, j.current_version FROM runs r "
        "JOIN jobs j ON j.job_id = r.job_id WHERE r.run_id = ?", (run_id,)).fetchone()
    if row is None or row["type"] not in LONG_RUNNING or row["desired_state"] != "running":
        return None
    if stop_requests(home, [run_id]) and not stopped:
        return None
    quick, delay = restart_delay(row["restarts"], uptime)
    now = time.time()
    with store.transaction(conn):
        newer = conn.execute(
            "SELECT 1 FROM runs WHERE job_id = ? AND run_id > ? AND state IN "
            "('pending', 'building', 'starting', 'running')", (row["job_id"], run_id)).fetchone()
        if newer:
            return None
        new_id = run_state.create(
            conn, job_id=row["job_id"], version=row["current_version"], run_as=row["run_as"],
            environment=row["environment"], trigger="restart", params=row["params"],
            restarts=quick, attempt=row["attempt"] + 1, scheduled_for=now + delay, now=now,
            detail=f"restart of run {run_id} in {delay:g}s")
    if quick >= CRASH_LOOP_AFTER:
        tail = " | ".join([line for line in log_tail(home.run_dir(run_id) / "stderr", 25)
                           if not line.startswith(BUILD_LINE_PREFIX)][-5:])  # the job's own lines
        last = row["reason"] or (f"exit code {code}" if code is not None else "failed")
        detail = f"{last}; restart {quick} in {delay:g}s; log tail: {tail}"
        run_state.event(home, run_id, "crash-looping", detail[:2000])
        run_state.event(home, new_id, "crash-looping", detail[:2000])
        run_state.transition(home, run_id, None, reason=(
            f"{row['reason'] or last} (crash-looping: restart {quick} in {delay:g}s)"))
    return new_id, delay


def queue_missing(home: Home, force: bool = False) -> None:
    """Queue a run for every service, app or add-in that should run and has none (``force``:
    also those whose last run ended, as after a restart of the daemon)."""
    conn = store.connection(home)
    rows = conn.execute(
        "SELECT j.job_id, j.current_version, j.owner_id, j.environment FROM jobs j "
        "WHERE j.desired_state = 'running' AND j.type IN ('service', 'app', 'excel') "
        "AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.job_id = j.job_id AND r.state IN "
        "('pending', 'building', 'starting', 'running'))").fetchall()
    for row in rows:
        last = conn.execute("SELECT * FROM runs WHERE job_id = ? ORDER BY run_id DESC LIMIT 1",
                            (row["job_id"],)).fetchone()
        if last is not None and not force:
            continue  # its restart is the business of queue_restart (backoff)
        now = time.time()
        with store.transaction(conn):
            new_id = run_state.create(
                conn, job_id=row["job_id"],
                version=last["version"] if last else row["current_version"],
                run_as=last["run_as"] if last else row["owner_id"],
                environment=row["environment"], trigger="restart",
                params=last["params"] if last else "{}",
                attempt=(last["attempt"] + 1) if last else 1, now=now,
                detail="restarted by the daemon")
        log(f"job {row['job_id']} should be running: queued run {new_id}")
