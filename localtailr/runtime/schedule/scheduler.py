"""The scheduler: turns schedules into pending runs, each fire time exactly once.

The daemon calls ``tick(home)`` each time round its loop (and waits at most
``seconds_to_next(home)`` before the next call, using ``Clock.wait`` so that a
test that moves the clock is served at once).

- Cron schedules: for each ``schedules`` row that is due, ``scheduler_plan.plan``
  says which fire times to run; the runs (trigger ``"schedule"``, ``scheduled_for``
  = the fire time) and the row's new ``next_fire``/``last_fire`` are written in
  ONE transaction (``BEGIN IMMEDIATE``). Two ticks at once, from two processes,
  or a tick after a crash, therefore never fire a time twice. Runs missed while
  the daemon was down fire once (``catchup="once"``, default), every one
  (``"all"``) or not at all (``"none"``); ``LOCALTAILR_SCHEDULE_CATCHUP`` sets it.
- Run-after triggers: a job whose schedule says ``run_after_job_*`` gets a run
  (trigger ``"after:<job>"``) when a run of that job ends with the condition
  (success / failure / completion). The row's ``last_fire`` is the ``ended_at``
  of the last upstream run already considered (real time), so each ending
  triggers once.
- ``run_now(home, job_id)``: a pending run with trigger ``"manual"`` (Pachyderm's
  run_cron).
- No overlap: a cron fire or run-after trigger of a job that has a run still active
  (pending to running) starts nothing; an event ``fire-skipped`` on that run says why
  (Airflow's ``max_active_runs=1``). A schedule with ``allow_overlap`` starts one anyway.

Times of fire come from ``runtime.clock`` (tests can freeze and advance it).
"""

from __future__ import annotations

import datetime
import sqlite3
import time

from ... import store
from ...core import settings
from ...core.home import Home
from ...store import job_versions, runs, wakeup
from ...store.clock import clock
from .plan import CATCHUP, plan

CATCHUP_VAR = settings.SCHEDULE_CATCHUP.name
_ENDED = {
    "success": ("succeeded",),
    "failure": ("failed", "killed", "lost"),
    "completion": ("succeeded", "failed", "killed", "lost"),
}


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _catchup(value: str | None) -> str:
    value = value or settings.SCHEDULE_CATCHUP.text()
    if value not in CATCHUP:
        raise ValueError(f"catchup={value!r}: use one of {', '.join(CATCHUP)}")
    return value


def create_run(
    conn: sqlite3.Connection, job_id: int, trigger: str,
    scheduled_for: float | None = None, now: float | None = None,
) -> int:
    """Insert a pending run of the job's current version (inside the caller's transaction).

    A job whose ``run_as`` user no longer exists gets its run, failed with that reason (a
    scheduled run never silently runs as someone else)."""
    job = conn.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    definition = None if job is None else job_versions.definition(
        conn, job_id, job["current_version"])
    if job is None or definition is None:
        raise ValueError(f"no job {job_id}")
    failure = None
    try:
        run_as = runs.run_as_id(conn, _run_as_name(definition), job["owner_id"])
    except ValueError as exc:
        run_as, failure = job["owner_id"], str(exc)
    at = time.time() if now is None else now
    run_id = runs.create(conn, job_id=job_id, version=job["current_version"], run_as=run_as,
                         environment=job["environment"], trigger=trigger,
                         scheduled_for=scheduled_for, detail=trigger, now=at)
    if failure is not None:
        runs.set_state(conn, run_id, "failed", failure, now=at)
    return run_id


def _run_as_name(definition: dict) -> str | None:
    value = definition.get("run_as") if isinstance(definition, dict) else None
    return value if isinstance(value, str) else None


def _blocking_run(conn: sqlite3.Connection, job_id: int) -> int | None:
    """The job's active run that a new fire must not overlap; None if it may start (no
    active run, or its current schedule says ``allow_overlap``)."""
    active = conn.execute(
        "SELECT run_id FROM runs WHERE job_id = ? AND parent_run_id IS NULL AND state IN "
        "('pending', 'building', 'starting', 'running') ORDER BY run_id LIMIT 1",
        (job_id,)).fetchone()
    if active is None:
        return None
    job = conn.execute("SELECT current_version FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    definition = None if job is None else job_versions.definition(conn, job_id, job[0])
    schedule = definition.get("schedule") if isinstance(definition, dict) else None
    if isinstance(schedule, dict) and schedule.get("allow_overlap") is True:
        return None
    return int(active[0])


def _skip(conn: sqlite3.Connection, active: int, what: str) -> None:
    """Record on the active run that a fire was skipped because of it."""
    runs.add_event(conn, active, "fire-skipped", f"{what} skipped: run {active} is still active "
                   "(Schedule(allow_overlap=True) starts overlapping runs)")


def _fire(conn: sqlite3.Connection, job_id: int, trigger: str, what: str,
          scheduled_for: float | None = None, now: float | None = None) -> int | None:
    """A new run for a fire, or None (and the skip recorded) when one is still active."""
    active = _blocking_run(conn, job_id)
    if active is not None:
        _skip(conn, active, what)
        return None
    return create_run(conn, job_id, trigger, scheduled_for, now)


def fire_cron(conn: sqlite3.Connection, now: float, catchup: str = "once") -> list[int]:
    """Create the runs due at ``now`` and move the rows on, in one transaction; run ids."""
    created: list[int] = []
    due = ("SELECT job_id, cron, timezone, next_fire, last_fire FROM schedules "
           "WHERE cron IS NOT NULL AND cron != '' AND (next_fire IS NULL OR next_fire <= ?)")
    if conn.execute(due + " LIMIT 1", (now,)).fetchone() is None:
        return created  # nothing due (most seconds): no write transaction taken
    with store.transaction(conn):
        rows = conn.execute(due, (now,)).fetchall()
        real = time.time()
        for row in rows:
            fires, new_next = plan(row, now, catchup)
            for fire in fires:
                run_id = _fire(conn, row["job_id"], "schedule", f"the fire of {_iso(fire)}",
                               fire, real)
                if run_id is not None:
                    created.append(run_id)
            conn.execute(
                "UPDATE schedules SET next_fire = ?, last_fire = ? WHERE job_id = ?",
                (new_next, fires[-1] if fires else row["last_fire"], row["job_id"]),
            )
    return created


def fire_after(conn: sqlite3.Connection) -> list[int]:
    """Start the jobs whose run-after condition a newly ended run meets; run ids."""
    created: list[int] = []
    rows = conn.execute(
        "SELECT s.job_id, s.run_after_job_id, s.run_after_condition, s.last_fire "
        "FROM schedules s WHERE s.run_after_job_id IS NOT NULL"
    ).fetchall()
    for row in rows:
        since = row["last_fire"] or 0.0
        waiting = conn.execute(
            "SELECT 1 FROM runs WHERE job_id = ? AND parent_run_id IS NULL "
            "AND ended_at > ? LIMIT 1",
            (row["run_after_job_id"], since),
        ).fetchone()
        if waiting is None:
            continue
        with store.transaction(conn):
            current = conn.execute(
                "SELECT last_fire FROM schedules WHERE job_id = ?", (row["job_id"],)
            ).fetchone()
            if current is None:
                continue
            since = current[0] or 0.0
            ended = conn.execute(
                "SELECT r.run_id, r.state, r.ended_at, j.name FROM runs r "
                "JOIN jobs j ON j.job_id = r.job_id "
                "WHERE r.job_id = ? AND r.parent_run_id IS NULL AND r.ended_at > ? "
                "ORDER BY r.ended_at",
                (row["run_after_job_id"], since),
            ).fetchall()
            states = _ENDED.get(row["run_after_condition"] or "success", ())
            last = since
            for run in ended:
                if run["state"] not in _ENDED["completion"]:
                    continue  # not ended yet (ended_at set ahead of the state)
                last = max(last, run["ended_at"])
                if run["state"] in states:
                    run_id = _fire(conn, row["job_id"], f"after:{run['name']}",
                                   f"the trigger by run {run['run_id']} of {run['name']}")
                    if run_id is not None:
                        created.append(run_id)
            conn.execute("UPDATE schedules SET last_fire = ? WHERE job_id = ?", (last, row["job_id"]))
    return created


def tick(home: Home, now: float | None = None, catchup: str | None = None) -> list[int]:
    """Fire what is due at ``now`` (default: localtailr's clock); the new run ids.

    When a test has moved the clock (``Clock.freeze``/``advance``) its time is used
    whatever ``now`` says.

    Wakes the daemon when it created runs.
    """
    conn = store.connection(home)
    c = clock(home)
    # The daemon passes time.time(); a clock a test has moved (a clock file) wins over it.
    at = c.now() if now is None or c.path.exists() else now
    created = fire_cron(conn, at, _catchup(catchup))
    created += fire_after(conn)
    if created:
        wakeup.notify(home)
    return created


def seconds_to_next(home: Home, limit: float = 60.0) -> float:
    """How long (by localtailr's clock) until the next cron fire, at most ``limit``."""
    conn = store.connection(home)
    row = conn.execute(
        "SELECT MIN(next_fire) FROM schedules WHERE cron IS NOT NULL AND next_fire IS NOT NULL"
    ).fetchone()
    if row is None or row[0] is None:
        return limit
    return max(0.0, min(limit, row[0] - clock(home).now()))


def run_now(home: Home, job_id: int) -> int:
    """A pending run of the job, now (trigger ``"manual"``; Pachyderm's run_cron)."""
    conn = store.connection(home)
    with store.transaction(conn):
        run_id = create_run(conn, job_id, "manual")
    wakeup.notify(home)
    return run_id
