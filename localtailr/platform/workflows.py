"""Workflow runs beyond ``job``'s operations: save and start, stop, tasks, results, rerun.

Rights on the workflow's job (``job/<environment>/<name>``): READ to see its tasks and
results, OPERATE to stop it or rerun its failures.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping
from typing import Any

from .. import store
from ..core.runs import TERMINAL
from ..store import runs
from . import jobs
from .context import Context


def save(ctx: Context, definition: Mapping, acl_: dict | None, start: bool) -> tuple[dict, int | None]:
    """Save the workflow (and its schedule) as a new version; start a run if ``start``.

    Returns (the job, the new run id or None); an error in either saves nothing.
    """
    with store.transaction(ctx.conn):
        job = jobs.save(ctx, definition, acl_)  # writes the schedule row too
        run_id = None
        if start:
            run_id = jobs.start(ctx, job["name"])["run_id"]
    return job, run_id


def _workflow_run(ctx: Context, run_id: int, permission: str, action: str):
    row = jobs._run_row(ctx, run_id)
    jobs._require_run(ctx, row, permission, action)
    if row["parent_run_id"] is not None:
        raise ValueError(f"run {run_id} is a task of workflow run {row['parent_run_id']}: "
                         f"{action} the workflow run")
    return row


def stop(ctx: Context, run_id: int) -> None:
    """Ask a workflow run to stop (needs OPERATE): its running tasks are killed, the rest
    skipped, by the daemon's workflow engine."""
    with store.transaction(ctx.conn) as conn:
        row = _workflow_run(ctx, run_id, "operate", "stop")
        if row["state"] not in TERMINAL:
            runs.request_stop(conn, run_id, f"stopped by {ctx.user}")
    jobs.notify(ctx.home)


def rerun_failed(ctx: Context, run_id: int) -> int:
    """A new run that reuses what succeeded in ``run_id`` and runs the rest (needs OPERATE);
    the new run's id."""
    return jobs.rerun(ctx, run_id, failed_only=True)["run_id"]


def tasks(ctx: Context, run_id: int) -> list[dict]:
    """Every attempt of every task of a workflow run, oldest first (needs READ)."""
    _workflow_run(ctx, run_id, "read", "see the tasks of")
    rows = ctx.conn.execute(
        "SELECT r.*, rr.repr AS result_repr FROM runs r "
        "LEFT JOIN run_results rr ON rr.run_id = r.run_id "
        "WHERE r.parent_run_id = ? ORDER BY r.run_id",
        (run_id,),
    ).fetchall()
    out = []
    for row in rows:
        item = dict(row)
        if row["state"] == "failed":
            item["error"] = runs.failure_detail(ctx.conn, row)
        out.append(item)
    return out


def results(ctx: Context, run_id: int, names: Iterable[str] | None = None) -> dict[str, Any]:
    """``{task name: result}`` of the tasks of a workflow run that succeeded (needs READ)."""
    _workflow_run(ctx, run_id, "read", "read the results of")
    out: dict[str, Any] = {}
    for name, child in runs.latest_children(ctx.conn, run_id).items():
        if child["state"] != "succeeded" or (names is not None and name not in names):
            continue
        row = ctx.conn.execute("SELECT data FROM run_results WHERE run_id = ?",
                               (child["run_id"],)).fetchone()
        if row is not None:
            out[name] = pickle.loads(row[0])
    return out
