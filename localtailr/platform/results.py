"""``result``: what a workflow task returned, as the text its own process wrote.

A task's process pickles its result and writes its ``repr`` beside it (``run_results``).
Faces show the repr and never unpickle: a pickle runs code when loaded, and the caller
of a page or the CLI must not run a job's code. Reading needs READ on the run's job.
"""

from __future__ import annotations

from . import acl, jobs
from .context import Context


def result_repr(ctx: Context, run_id: int) -> str | None:
    """The ``repr`` of run ``run_id``'s result (None: it stored none)."""
    row = jobs._run_row(ctx, run_id)
    jobs._require_run(ctx, row, "read", "read the result of run")
    found = ctx.conn.execute("SELECT repr FROM run_results WHERE run_id = ?", (run_id,)).fetchone()
    return None if found is None else found[0]


def may(ctx: Context, environment: str, name: str, permission: str) -> bool:
    """Whether the caller holds ``permission`` on job ``name`` (for faces offering actions)."""
    return acl.allowed(ctx, jobs.resource(environment, name), permission)
