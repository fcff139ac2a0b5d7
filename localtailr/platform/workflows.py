"""Workflow operations beyond ``job``'s: save a workflow and start it in one transaction."""

from __future__ import annotations

from collections.abc import Mapping

from .. import store
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
