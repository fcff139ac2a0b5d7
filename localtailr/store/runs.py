"""Changes to a run's state: the ``runs`` row and a ``run_events`` row, in one transaction.

Only the daemon (and what it starts) calls these; every later reader sees rows only.
"""

from __future__ import annotations

import datetime as _dt
import time

from .. import store
from ..core.home import Home

ACTIVE = ("pending", "building", "starting", "running")
TERMINAL = ("succeeded", "failed", "killed", "lost")
_COLUMNS = {"reason", "pid", "pid_create_time", "port", "url", "exit_code", "restarts",
            "peak_rss", "peak_cpu", "image_key", "started_at", "ended_at", "attempt"}


def iso(ts: float) -> str:
    """``2026-11-22T06:30:00Z`` for a timestamp."""
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def transition(home: Home, run_id: int, state: str | None, detail: str | None = None,
               only_from: tuple[str, ...] | None = None, **columns) -> bool:
    """Set the run's ``state`` (None: keep it) and ``columns``; add an event; return False
    (and change nothing) if ``only_from`` is given and the run is in none of those states."""
    bad = set(columns) - _COLUMNS
    if bad:
        raise ValueError(f"unknown run columns {sorted(bad)}")
    now = time.time()
    if state in TERMINAL:
        columns.setdefault("ended_at", now)
        if detail is not None:
            columns.setdefault("reason", detail)
    conn = store.connection(home)
    with store.transaction(conn):
        if only_from is not None:
            row = conn.execute("SELECT state FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None or row[0] not in only_from:
                return False
        sets = dict(columns)
        if state is not None:
            sets["state"] = state
        if sets:
            conn.execute(
                f"UPDATE runs SET {', '.join(f'{k} = ?' for k in sets)} WHERE run_id = ?",
                (*sets.values(), run_id),
            )
        if state is not None:
            conn.execute("INSERT INTO run_events (run_id, at, state, detail) VALUES (?, ?, ?, ?)",
                         (run_id, now, state, detail))
    return True


def event(home: Home, run_id: int, state: str, detail: str | None = None) -> None:
    """Record an event that is not a state change (``crash-looping``, ``throttled`` ...)."""
    conn = store.connection(home)
    store.write(conn, "INSERT INTO run_events (run_id, at, state, detail) VALUES (?, ?, ?, ?)",
                (run_id, time.time(), state, detail))
