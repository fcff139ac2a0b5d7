"""The runs: the only code that creates a run or changes its state.

A run is a ``runs`` row; each change of its state adds a ``run_events`` row in the same
transaction. Every move is checked against the table of :mod:`localtailr.core.runs`: a move
the table forbids changes nothing (the function returns False). Functions taking a
connection work inside the caller's transaction; those taking a home open their own.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
import time

from .. import store
from ..core.home import Home
from ..core.runs import CREATED_AS, STATES, TERMINAL, TransitionError, allowed, check_state

STOP_REQUESTED = "stop-requested"  # the event that asks the daemon to stop a run
TASK_ERROR = "task-error"  # the event a workflow task records with its error

_COLUMNS = {"reason", "pid", "pid_create_time", "port", "url", "exit_code", "restarts",
            "peak_rss", "peak_cpu", "image_key", "started_at", "ended_at", "attempt"}


def iso(ts: float) -> str:
    """``2026-11-22T06:30:00Z`` for a timestamp."""
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create(
    conn: sqlite3.Connection, *, job_id: int, version: int, run_as: int, environment: str,
    trigger: str, detail: str | None, params: str = "{}", state: str = "pending",
    reason: str | None = None, parent_run_id: int | None = None, task_name: str | None = None,
    scheduled_for: float | None = None, image_key: str | None = None, attempt: int = 1,
    restarts: int = 0, now: float | None = None,
) -> int:
    """Insert a run in ``state`` (pending; a workflow task may start skipped or, reused,
    succeeded) and its first event; the new run id."""
    if check_state(state) not in CREATED_AS:
        raise TransitionError(f"a run is created {' or '.join(CREATED_AS)}, not {state!r}")
    now = time.time() if now is None else now
    run_id = store.insert(
        conn,
        "INSERT INTO runs (job_id, version, parent_run_id, task_name, state, reason, run_as,"
        " environment, trigger, params, scheduled_for, image_key, attempt, restarts, created_at,"
        " ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (job_id, version, parent_run_id, task_name, state, reason, run_as, environment, trigger,
         params, scheduled_for, image_key, attempt, restarts, now,
         now if state in TERMINAL else None),
    )
    add_event(conn, run_id, state, detail, now)
    return run_id


def run_as_id(conn: sqlite3.Connection, name: str | None, default: int) -> int:
    """The user id a run runs as: the user named ``name`` (ValueError if there is none any
    more: a run never silently runs as someone else), or ``default`` when no name is given."""
    if not name:
        return default
    row = conn.execute("SELECT user_id FROM users WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise ValueError(f"run_as user {name!r} no longer exists")
    return int(row[0])


def set_state(
    conn: sqlite3.Connection, run_id: int, state: str, detail: str | None = None,
    only_from: tuple[str, ...] | None = None, now: float | None = None, **columns,
) -> bool:
    """Move the run to ``state`` and set ``columns``, with an event, inside the caller's
    transaction. False (nothing changed) if the run is not in ``only_from`` or the table
    forbids the move. An end state stamps ``ended_at`` (and ``reason`` from ``detail``);
    ``running`` stamps ``started_at`` if it is not set yet."""
    check_state(state)
    _check_columns(columns)
    row = conn.execute("SELECT state FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None or (only_from is not None and row[0] not in only_from):
        return False
    if not allowed(row[0], state):
        return False
    now = time.time() if now is None else now
    if state in TERMINAL:
        columns.setdefault("ended_at", now)
        if detail is not None:
            columns.setdefault("reason", detail)
    sets = {"state": state, **columns}
    sql = ", ".join(f"{k} = ?" for k in sets)
    args: tuple = tuple(sets.values())
    if state == "running" and "started_at" not in columns:
        sql += ", started_at = COALESCE(started_at, ?)"
        args += (now,)
    conn.execute(f"UPDATE runs SET {sql} WHERE run_id = ?", (*args, run_id))
    add_event(conn, run_id, state, detail, now)
    return True


def transition(home: Home, run_id: int, state: str | None, detail: str | None = None,
               only_from: tuple[str, ...] | None = None, **columns) -> bool:
    """``set_state`` in a transaction of its own (``state`` None: set ``columns`` only)."""
    conn = store.connection(home)
    with store.transaction(conn):
        if state is None:
            set_columns(conn, run_id, **columns)
            return True
        return set_state(conn, run_id, state, detail, only_from, **columns)


def set_columns(conn: sqlite3.Connection, run_id: int, **columns) -> None:
    """Set columns that are not the state (peaks, reason, pid ...), inside the caller's
    transaction."""
    _check_columns(columns)
    if columns:
        conn.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in columns)} WHERE run_id = ?",
                     (*columns.values(), run_id))


def request_stop(conn: sqlite3.Connection, run_id: int, detail: str, now: float | None = None) -> str:
    """Stop a run, inside the caller's transaction: a pending run (nobody owns it yet) is
    ``killed`` here; any other gets a ``stop-requested`` event the daemon acts on. Which of
    the two it was."""
    now = time.time() if now is None else now
    if set_state(conn, run_id, "killed", detail, only_from=("pending",), now=now):
        return "killed"
    add_event(conn, run_id, STOP_REQUESTED, detail, now)
    return STOP_REQUESTED


def add_event(conn: sqlite3.Connection, run_id: int, kind: str, detail: str | None,
              now: float | None = None) -> None:
    """A ``run_events`` row, inside the caller's transaction (``set_state`` and ``create``
    add the ones of state changes)."""
    conn.execute("INSERT INTO run_events (run_id, at, state, detail) VALUES (?, ?, ?, ?)",
                 (run_id, time.time() if now is None else now, kind, detail))


def event(home: Home, run_id: int, kind: str, detail: str | None = None) -> None:
    """Record an event that is not a state change (``crash-looping``, ``adopted`` ...)."""
    if kind in STATES:
        raise TransitionError(f"{kind!r} is a run state: change it with transition()")
    conn = store.connection(home)
    store.write(conn, "INSERT INTO run_events (run_id, at, state, detail) VALUES (?, ?, ?, ?)",
                (run_id, time.time(), kind, detail))


def _check_columns(columns: dict) -> None:
    bad = set(columns) - _COLUMNS
    if bad:
        raise ValueError(f"unknown run columns {sorted(bad)}")


# -- workflow runs ---------------------------------------------------------------------


def latest_children(conn: sqlite3.Connection, parent_run_id: int) -> dict[str, sqlite3.Row]:
    """The last attempt of each node of a workflow run: ``{task name: run row}``."""
    out: dict[str, sqlite3.Row] = {}
    for row in conn.execute(
        "SELECT * FROM runs WHERE parent_run_id = ? ORDER BY run_id", (parent_run_id,)
    ):
        out[row["task_name"]] = row
    return out


def event_detail(conn: sqlite3.Connection, run_id: int, kind: str) -> str | None:
    """The detail of the run's last ``kind`` event ("" if it had none), None if there is none."""
    row = conn.execute(
        "SELECT detail FROM run_events WHERE run_id = ? AND state = ? ORDER BY rowid DESC LIMIT 1",
        (run_id, kind),
    ).fetchone()
    return None if row is None else (row[0] or "")


def failure_detail(conn: sqlite3.Connection, child: sqlite3.Row) -> str:
    """Why a child failed: the task's error when it recorded one, else the run's reason."""
    error = event_detail(conn, child["run_id"], TASK_ERROR)
    return error or child["reason"] or child["state"]


def rerun_failures(conn: sqlite3.Connection, parent_run_id: int, run_as: int | None = None,
                   now: float | None = None) -> int:
    """A new run of a workflow run's job version that runs only what did not succeed,
    inside the caller's transaction; the new run's id.

    Tasks that succeeded in ``parent_run_id`` get a ``succeeded`` task in the new run with
    a copy of their result (reason ``reused from run N``); the workflow engine runs the rest.
    """
    now = time.time() if now is None else now
    old = conn.execute("SELECT * FROM runs WHERE run_id = ?", (parent_run_id,)).fetchone()
    if old is None or old["parent_run_id"] is not None:
        raise ValueError(f"run {parent_run_id} is not a workflow run")
    if old["state"] not in TERMINAL:
        raise ValueError(
            f"workflow run {parent_run_id} is still {old['state']}: stop it or let it "
            "finish before rerunning its failures"
        )
    new_id = create(
        conn, job_id=old["job_id"], version=old["version"],
        run_as=old["run_as"] if run_as is None else run_as, environment=old["environment"],
        trigger="rerun", params=old["params"], scheduled_for=old["scheduled_for"],
        image_key=old["image_key"], now=now, detail=f"rerun of the failures of run {parent_run_id}")
    for name, child in latest_children(conn, parent_run_id).items():
        if child["state"] != "succeeded":
            continue
        reason = f"reused from run {child['run_id']}"
        reused = create(
            conn, job_id=old["job_id"], version=old["version"], parent_run_id=new_id,
            task_name=name, state="succeeded", reason=reason, run_as=old["run_as"] if run_as is None else run_as,
            environment=old["environment"], trigger="rerun", params=old["params"],
            scheduled_for=old["scheduled_for"], image_key=old["image_key"], now=now, detail=reason)
        conn.execute("INSERT INTO run_results (run_id, data, repr) "
                     "SELECT ?, data, repr FROM run_results WHERE run_id = ?", (reused, child["run_id"]))
    return new_id
