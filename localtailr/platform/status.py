"""Read-only figures beside the listings: counts, schedules, metrics, restarts, the home.

The status page and ``localtailr info`` show them; each is read only for what the caller
may see (an admin sees everything; anyone else only the jobs, keys, secrets and blobs whose
ACL gives them READ). Nothing here writes.
"""

from __future__ import annotations

import time

from .. import store
from . import acl, jobs
from . import kv as kv_ops
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
    by_state = {state: n for state, n in conn.execute(  # counts kept by triggers (schema 3)
        f"SELECT state, sum(n) FROM run_counts WHERE 1 = 1{where} GROUP BY state", args
    ) if n}
    out = {
        "jobs": sum(by_type.values()), "jobs_by_type": by_type,
        "runs": sum(by_state.values()), "runs_by_state": by_state,
        "users": conn.execute("SELECT count(*) FROM users").fetchone()[0],
        "groups": conn.execute("SELECT count(*) FROM groups").fetchone()[0],
    }
    if ctx.caller.is_admin:  # counts kept by triggers (schema 3)
        kept = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT name, n, bytes FROM data_counts")}
        out["keys"], out["secrets"] = kept["kv"][0], kept["secrets"][0]
        out["blobs"], out["blob_bytes"] = kept["blobs"]
    else:  # what the caller may read, counted in SQL
        readable = ("EXISTS (SELECT 1 FROM acl WHERE resource = {} AND permission = 'read'"
                    f" AND principal IN ({','.join('?' * len(ctx.caller.principals))}))")
        p = list(ctx.caller.principals)
        out["keys"] = conn.execute(
            "SELECT count(*) FROM kv WHERE " + readable.format(f"'{kv_ops.KEYS.prefix}/' || environment || '/' || key"),
            p).fetchone()[0]
        out["secrets"] = conn.execute(
            "SELECT count(*) FROM secrets WHERE "
            + readable.format(f"'{kv_ops.SECRETS.prefix}/' || environment || '/' || key"), p).fetchone()[0]
        out["blobs"], out["blob_bytes"] = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM blobs WHERE "
            + readable.format("'blob/' || name"), p).fetchone()
    return out


def home(ctx: Context) -> dict:
    """``localtailr info``: the home, its schema version, the caller, and the counts."""
    return {"home": str(ctx.home.root), "schema_version": store.schema_version(ctx.conn),
            "user": ctx.user, "environment": ctx.environment, **counts(ctx)}


def schedules(ctx: Context) -> dict[tuple[str, str], dict]:
    """``{(environment, job name): {"cron", "timezone", "next_fire", "last_fire", "after"}}``
    of the jobs the caller may read."""
    where, args = _job_filter(readable_job_ids(ctx), "j.job_id")
    rows = ctx.conn.execute(
        "SELECT j.name, j.environment, s.cron, s.timezone, s.next_fire, s.last_fire, a.name AS after"
        " FROM schedules s JOIN jobs j ON j.job_id = s.job_id"
        " LEFT JOIN jobs a ON a.job_id = s.run_after_job_id WHERE 1 = 1" + where, args
    ).fetchall()
    return {(r["environment"], r["name"]): dict(r) for r in rows}


def _readable_runs(ctx: Context, run_ids: list[int]) -> list[int]:
    ids = readable_job_ids(ctx)
    if ids is None or not run_ids:
        return list(run_ids)
    where, args = _job_filter(ids)
    return [r[0] for r in ctx.conn.execute(
        f"SELECT run_id FROM runs WHERE run_id IN ({','.join('?' * len(run_ids))}){where}",
        (*run_ids, *args))]


def runs_by_id(ctx: Context, run_ids: list[int]) -> dict[int, dict]:
    """State and times of the runs among ``run_ids`` the caller may read, by id."""
    run_ids = _readable_runs(ctx, run_ids)
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
    """The latest restart-like events (restarting, crash-looping, exits) of the runs among
    ``run_ids`` the caller may read."""
    run_ids = _readable_runs(ctx, run_ids)
    if not run_ids:
        return []
    return [dict(r) for r in ctx.conn.execute(
        "SELECT run_id, at, state, detail FROM run_events"
        f" WHERE run_id IN ({','.join('?' * len(run_ids))})"
        " AND state IN ('restarting', 'restarted', 'crash-looping', 'failed', 'lost', 'exited')"
        " ORDER BY at DESC LIMIT ?", (*run_ids, limit),
    )]


def restart_count(ctx: Context, environment: str, name: str) -> int:
    """How many runs of a job the daemon (or a person) started as a restart (needs READ)."""
    acl.require(ctx, jobs.resource(environment, name), "read", "count the restarts of")
    return ctx.conn.execute(
        "SELECT count(*) FROM runs r JOIN jobs j ON j.job_id = r.job_id WHERE j.name = ?"
        " AND j.environment = ? AND r.parent_run_id IS NULL AND r.trigger = 'restart'",
        (name, environment),
    ).fetchone()[0]
