"""A job's schedule row: written when a job version with a schedule is saved.

``save(conn, job_id, schedule)`` runs inside the caller's transaction (the one
that saves the job version), so a job and its schedule change together. The
``schedules`` row holds either a cron (6-field form) with its timezone and
``next_fire``, or a run-after trigger (``run_after_job_id``, condition). An
unknown run-after job is refused here, at definition time.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.cron import next_fire_ts, normalize
from ..store.clock import clock

CONDITIONS = ("success", "failure", "completion")
_NON_NAME = re.compile(r"[^a-z0-9]+")


def job_name(name: str) -> str:
    """A job's stored name: lower case, runs of other characters than a-z0-9 as '-'."""
    return _NON_NAME.sub("-", name.lower()).strip("-")


def _as_dict(schedule: Any) -> dict | None:
    if schedule is None:
        return None
    if hasattr(schedule, "to_dict"):
        return schedule.to_dict()
    if isinstance(schedule, Mapping):
        return dict(schedule)
    raise ValueError(f"invalid schedule {schedule!r}: use a Schedule or its to_dict()")


def resolve_after(conn: sqlite3.Connection, schedule: Mapping, environment: str) -> int | None:
    """The job id a run-after schedule waits for; ValueError if that job does not exist."""
    ident = schedule.get("run_after_job_uuid")
    name = schedule.get("run_after_job_name")
    if not ident and not name:
        return None
    if ident:
        row = conn.execute(
            "SELECT job_id FROM jobs WHERE CAST(job_id AS TEXT) = ?", (str(ident),)
        ).fetchone()
        if row is None:
            raise ValueError(
                f"run_after_job_uuid={ident!r}: no such job (use the id `localtailr job ls` shows)"
            )
        return int(row[0])
    row = conn.execute(
        "SELECT job_id FROM jobs WHERE name = ? AND environment = ?",
        (job_name(str(name)), environment),
    ).fetchone()
    if row is None:
        raise ValueError(
            f"run_after_job_name={name!r}: no job of that name in {environment}; "
            "save that job first"
        )
    return int(row[0])


def save(
    conn: sqlite3.Connection, job_id: int, schedule: Any, now: float | None = None
) -> dict | None:
    """Create, update or (schedule None) delete the schedules row of ``job_id``.

    ``schedule`` is a Schedule or ``Schedule.to_dict()``. A changed cron or timezone
    gets a fresh ``next_fire`` (after ``now``, default localtailr's clock); an unchanged
    one keeps its ``next_fire``/``last_fire``, so saving a new version never fires twice
    nor skips a fire. Returns the row as a dict (None when deleted).
    """
    data = _as_dict(schedule)
    if data is None:
        conn.execute("DELETE FROM schedules WHERE job_id = ?", (job_id,))
        return None
    job = conn.execute(
        "SELECT environment FROM jobs WHERE job_id = ?", (job_id,)
    ).fetchone()
    if job is None:
        raise ValueError(f"no job {job_id}")
    after = resolve_after(conn, data, job["environment"] if hasattr(job, "keys") else job[0])
    if after == job_id:
        raise ValueError("a job cannot run after itself")
    cron = data.get("cron") or data.get("cron_expression") or None
    if cron:
        cron = normalize(cron)
    tz = data.get("timezone") or None
    condition = (data.get("run_after_job_condition") or "success") if after else None
    if condition is not None and condition not in CONDITIONS:
        raise ValueError(f"run_after_job_condition={condition!r}: use one of {', '.join(CONDITIONS)}")
    if not cron and after is None:
        raise ValueError("an empty schedule: give a cron or a run-after job")
    old = conn.execute("SELECT * FROM schedules WHERE job_id = ?", (job_id,)).fetchone()
    if old is not None and old["cron"] == cron and old["timezone"] == tz:
        next_fire, last_fire = old["next_fire"], old["last_fire"]
    else:
        if now is None:
            now = _clock_now(conn)
        next_fire = next_fire_ts(cron, now, tz) if cron else None
        # A run-after trigger reacts to runs that end after it was saved (real time,
        # as runs.ended_at); see scheduler.fire_after.
        last_fire = None if cron else time.time()
    conn.execute(
        "INSERT OR REPLACE INTO schedules (job_id, cron, timezone, run_after_job_id, "
        "run_after_condition, next_fire, last_fire) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (job_id, cron, tz, after, condition, next_fire, last_fire),
    )
    return {
        "job_id": job_id, "cron": cron, "timezone": tz, "run_after_job_id": after,
        "run_after_condition": condition, "next_fire": next_fire, "last_fire": last_fire,
    }


def _clock_now(conn: sqlite3.Connection) -> float:
    """localtailr's time for the home whose database ``conn`` is open on."""
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    return clock(Path(path).parent).now()


def next_fire(conn: sqlite3.Connection, job_id: int) -> float | None:
    """The job's next fire time (epoch seconds), or None (no cron schedule). For ``job ls``."""
    row = conn.execute("SELECT next_fire FROM schedules WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else row[0]
