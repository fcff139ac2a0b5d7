"""Seed a home with jobs, runs, events and metrics as the daemon would record them (for web tests)."""

from __future__ import annotations

import time

from localtailr import store
from localtailr.core.runs import TERMINAL
from localtailr.platform import jobs
from localtailr.platform.context import Context

ENTRY = {"module": "support.jobs_entry", "qualname": "hello", "sys_path": None, "file": None, "kind": "module"}


def job(ctx: Context, name: str, type: str = "batch", workflow: dict | None = None, **extra) -> dict:
    """Save a job definition through the service layer."""
    d = {"name": name, "type": type, "entrypoint": None if type == "workflow" else ENTRY,
         "workflow": workflow, **extra}
    return jobs.save(ctx, d)


def run(ctx: Context, name: str, state: str = "succeeded", reason: str | None = None,
        ago: float = 60.0, **columns) -> int:
    """Start a run through the service layer, then move it to ``state`` as the daemon would."""
    run_id = jobs.start(ctx, name)["run_id"]
    set_state(ctx, run_id, state, reason, started=time.time() - ago, **columns)
    return run_id


def set_state(ctx: Context, run_id: int, state: str, reason: str | None = None,
              started: float | None = None, **columns) -> None:
    now = time.time()
    started = now if started is None else started
    ended = now if state in TERMINAL else None
    with store.transaction(ctx.conn) as conn:
        sets = ", ".join(f"{k} = ?" for k in columns)
        conn.execute(
            "UPDATE runs SET state = ?, reason = ?, started_at = coalesce(started_at, ?), ended_at = ?"
            + (f", {sets}" if sets else "") + " WHERE run_id = ?",
            (state, reason, started, ended, *columns.values(), run_id),
        )
        conn.execute("INSERT INTO run_events (run_id, at, state, detail) VALUES (?, ?, ?, ?)",
                     (run_id, now, state, reason))


def child(ctx: Context, parent_run_id: int, task: str, state: str, reason: str | None = None,
          attempt: int = 1) -> int:
    """A workflow task run, as the workflow engine records it."""
    now = time.time()
    with store.transaction(ctx.conn) as conn:
        p = conn.execute("SELECT * FROM runs WHERE run_id = ?", (parent_run_id,)).fetchone()
        rid = conn.execute(
            "INSERT INTO runs (job_id, version, parent_run_id, task_name, state, reason, run_as,"
            " environment, trigger, attempt, created_at, started_at, ended_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (p["job_id"], p["version"], parent_run_id, task, state, reason, p["run_as"],
             p["environment"], p["trigger"], attempt, now, now,
             now if state in TERMINAL else None),
        ).lastrowid
        conn.execute("INSERT INTO run_events (run_id, at, state, detail) VALUES (?, ?, ?, ?)",
                     (rid, now, state, reason))
    return rid


def metrics(ctx: Context, run_id: int, samples: int = 20, every: float = 5.0) -> None:
    now = time.time()
    with store.transaction(ctx.conn) as conn:
        conn.executemany(
            "INSERT INTO run_metrics (run_id, at, cpu, rss) VALUES (?, ?, ?, ?)",
            [(run_id, now - (samples - i) * every, 10.0 + i, (50 + i) * 2**20) for i in range(samples)],
        )


def dag(*edges: tuple[str, str], nodes: list[str] | None = None) -> dict:
    """A minimal DAG dict (the parts the page draws: node names and edges)."""
    names = list(nodes or [])
    for u, d in edges:
        for n in (u, d):
            if n not in names:
                names.append(n)
    return {"format": 1, "name": "wf", "nodes": [{"name": n} for n in names],
            "edges": [list(e) for e in edges]}
