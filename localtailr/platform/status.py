"""Read-only figures the pages show beside the service layer's listings.

Counts, schedules and metrics have no command of their own; they are read here, only
for what the caller may see (an admin sees everything; anyone else only the jobs,
keys and blobs whose ACL gives them READ). Nothing here writes.
"""

from __future__ import annotations

import time

from . import acl, jobs
from .context import Context


def readable_job_ids(ctx: Context) -> list[int] | None:
    """The ids of the jobs the caller may read; None for an admin (every job)."""
    if ctx.caller.is_admin:
        return None
    return [
        r["job_id"]
        for r in ctx.conn.execute("SELECT job_id, name, environment FROM jobs")
        if acl.allowed(ctx, jobs.resource(r["environment"], r["name"]), "read")
    ]


def _job_filter(ids: list[int] | None, column: str = "job_id") -> tuple[str, list]:
    if ids is None:
        return "", []
    return f" AND {column} IN ({','.join('?' * len(ids)) or 'NULL'})", list(ids)


def counts(ctx: Context) -> dict:
    """Jobs by type, top-level runs by state, and how many users, groups, keys, secrets, blobs."""
    conn = ctx.conn
    ids = readable_job_ids(ctx)
    where, args = _job_filter(ids)
    by_type = dict(conn.execute(f"SELECT type, count(*) FROM jobs WHERE 1 = 1{where} GROUP BY type", args).fetchall())
    by_state = dict(conn.execute(
        f"SELECT state, count(*) FROM runs WHERE parent_run_id IS NULL{where} GROUP BY state", args
    ).fetchall())
    out = {
        "jobs": sum(by_type.values()), "jobs_by_type": by_type,
        "runs": sum(by_state.values()), "runs_by_state": by_state,
        "users": conn.execute("SELECT count(*) FROM users").fetchone()[0],
        "groups": conn.execute("SELECT count(*) FROM groups").fetchone()[0],
    }
    if ctx.caller.is_admin:
        out["keys"] = conn.execute("SELECT count(*) FROM kv").fetchone()[0]
        out["secrets"] = conn.execute("SELECT count(*) FROM secrets").fetchone()[0]
        out["blobs"], out["blob_bytes"] = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM blobs").fetchone()
    else:
        out["keys"] = _count_readable(ctx, "SELECT environment, key FROM kv", "kv/{}/{}")
        out["secrets"] = _count_readable(ctx, "SELECT environment, key FROM secrets", "secret/{}/{}")
        rows = [r for r in conn.execute("SELECT name, size FROM blobs")
                if acl.allowed(ctx, f"blob/{r[0]}", "read")]
        out["blobs"], out["blob_bytes"] = len(rows), sum(r[1] for r in rows)
    return out


def _count_readable(ctx: Context, sql: str, resource: str) -> int:
    return sum(1 for r in ctx.conn.execute(sql) if acl.allowed(ctx, resource.format(*r), "read"))


def schedules(ctx: Context) -> dict[tuple[str, str], dict]:
    """``{(environment, job name): {"cron", "timezone", "next_fire", "last_fire", "after"}}``."""
    rows = ctx.conn.execute(
        "SELECT j.name, j.environment, s.cron, s.timezone, s.next_fire, s.last_fire, a.name AS after"
        " FROM schedules s JOIN jobs j ON j.job_id = s.job_id"
        " LEFT JOIN jobs a ON a.job_id = s.run_after_job_id"
    ).fetchall()
    return {(r["environment"], r["name"]): dict(r) for r in rows}


def runs_by_id(ctx: Context, run_ids: list[int]) -> dict[int, dict]:
    """State and times of some runs (already known to be readable), by id."""
    if not run_ids:
        return {}
    rows = ctx.conn.execute(
        "SELECT run_id, state, reason, created_at, started_at, ended_at, restarts FROM runs"
        f" WHERE run_id IN ({','.join('?' * len(run_ids))})", run_ids,
    ).fetchall()
    return {r["run_id"]: dict(r) for r in rows}


def metrics(ctx: Context, run_ids: int | list[int], seconds: float = 600.0) -> list[dict]:
    """CPU (percent of one core) and RSS (bytes) samples of some runs over the last ``seconds``
    (a service's runs across its restarts), oldest first.

    Needs READ on each run's job (checked through the service layer).
    """
    ids = [run_ids] if isinstance(run_ids, int) else list(run_ids)
    for run_id in ids:
        jobs.get_run(ctx, run_id, events=False)
    if not ids:
        return []
    since = time.time() - seconds
    return [dict(r) for r in ctx.conn.execute(
        "SELECT run_id, at, cpu, rss FROM run_metrics"
        f" WHERE run_id IN ({','.join('?' * len(ids))}) AND at >= ? ORDER BY at",
        (*ids, since),
    )]


def restart_events(ctx: Context, run_ids: list[int], limit: int = 10) -> list[dict]:
    """The latest restart-like events (restarting, crash-looping, exits) of some runs."""
    if not run_ids:
        return []
    return [dict(r) for r in ctx.conn.execute(
        "SELECT run_id, at, state, detail FROM run_events"
        f" WHERE run_id IN ({','.join('?' * len(run_ids))})"
        " AND state IN ('restarting', 'restarted', 'crash-looping', 'failed', 'lost', 'exited')"
        " ORDER BY at DESC LIMIT ?", (*run_ids, limit),
    )]


def restart_count(ctx: Context, environment: str, name: str) -> int:
    """How many runs of a job the daemon (or a person) started as a restart."""
    return ctx.conn.execute(
        "SELECT count(*) FROM runs r JOIN jobs j ON j.job_id = r.job_id WHERE j.name = ?"
        " AND j.environment = ? AND r.parent_run_id IS NULL AND r.trigger = 'restart'",
        (name, environment),
    ).fetchone()[0]
