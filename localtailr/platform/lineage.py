"""``lineage``: which run wrote a blob or key version, from which inputs, and what used it.

Built on what ``provenance`` records. Each item is named by its ACL resource
(``blob/NAME``, ``kv/ENV/KEY``, ``secret/ENV/KEY``) and a version; the caller sees
only the items (and runs) it may read.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import NotFoundError, PermissionError
from . import acl
from . import blob as blob_ops
from .context import Context

MAX_RUNS = 10_000  # a walk stops after this many runs

# Runs are linked by run_reads.writer_run (a run read what another wrote): each walk is
# one recursive query, breadth first (SQLite's queue is FIFO), each run once (UNION).
_BACK = ("WITH RECURSIVE back(run_id) AS (SELECT ?1 UNION SELECT r.writer_run FROM back b"
         " JOIN run_reads r ON r.run_id = b.run_id WHERE r.writer_run IS NOT NULL LIMIT ?2)"
         " SELECT run_id FROM back")
_FORWARD = ("WITH RECURSIVE fwd(run_id) AS (SELECT run_id FROM run_reads WHERE resource = ?1 AND version = ?2"
            " UNION SELECT r.run_id FROM fwd f JOIN run_reads r ON r.writer_run = f.run_id LIMIT ?3)"
            " SELECT run_id FROM fwd")
_READS = ("SELECT run_id, resource, version FROM run_reads WHERE run_id IN (SELECT value FROM json_each(?))"
          " ORDER BY run_id, resource, version")
_WRITES = ("SELECT run_id, 'blob/' || name, version FROM blob_versions WHERE run_id IN (SELECT value FROM json_each(?1))"
           " UNION ALL SELECT run_id, CASE kind WHEN 'key' THEN 'kv/' ELSE 'secret/' END || environment || '/' || key,"
           " version FROM kv_versions WHERE run_id IN (SELECT value FROM json_each(?1)) ORDER BY 1, 2, 3")


def _writer(conn, resource: str, version: int) -> int | None:
    kind, _, rest = resource.partition("/")
    if kind == "blob":
        row = conn.execute("SELECT run_id FROM blob_versions WHERE name = ? AND version = ?",
                           (rest, version)).fetchone()
    else:
        env, _, key = rest.partition("/")
        row = conn.execute(
            "SELECT run_id FROM kv_versions WHERE kind = ? AND environment = ? AND key = ? AND version = ?",
            ("key" if kind == "kv" else "secret", env, key, version)).fetchone()
    return row[0] if row else None


def _runs_info(ctx: Context, run_ids: list[int]) -> dict[int, dict]:
    rows = ctx.conn.execute(
        "SELECT r.run_id, r.task_name, r.state, r.parent_run_id, r.created_at, j.name AS job, j.environment"
        " FROM runs r JOIN jobs j ON j.job_id = r.job_id WHERE r.run_id IN (SELECT value FROM json_each(?))",
        (json.dumps(run_ids),)).fetchall()
    return {r["run_id"]: dict(r) for r in rows
            if acl.allowed(ctx, f"job/{r['environment']}/{r['job']}", "read")}


def _nodes(ctx: Context, run_ids: list[int]) -> list[dict]:
    """Each run with what it read and wrote (the items the caller may read), in the given order."""
    cache: dict[str, bool] = {}

    def readable(res: str) -> bool:
        if res not in cache:
            cache[res] = acl.allowed(ctx, res, "read")
        return cache[res]

    nodes: dict[int, dict[str, Any]] = {i: {"run_id": i, "read": [], "wrote": []} for i in run_ids}
    cur = ctx.conn.cursor()
    cur.row_factory = None  # plain tuples: cheaper over thousands of rows
    ids = json.dumps(run_ids)
    for field, sql in (("read", _READS), ("wrote", _WRITES)):
        for run_id, res, version in cur.execute(sql, (ids,)):
            if readable(res):
                nodes[run_id][field].append({"resource": res, "version": version})
    info = _runs_info(ctx, run_ids)
    for node in nodes.values():
        node["run"] = info.get(node["run_id"])  # None: gone, or a job the caller may not read
    return [nodes[i] for i in run_ids]


def blob(ctx: Context, name: str, version: int | None = None) -> dict:
    """The lineage of a blob version (default: the current one), for a caller with READ:
    ``written_by`` (the run, or None when written outside a run), ``back`` (the runs that
    produced it, each with what it read and wrote, nearest first) and ``forward`` (the
    runs that read it, and theirs in turn)."""
    blob_ops.validate_name(name)
    res = blob_ops.resource(name)
    if version is None:
        row = ctx.conn.execute("SELECT version FROM blobs WHERE name = ?", (name,)).fetchone()
        if row is None:
            row = ctx.conn.execute("SELECT max(version) FROM blob_versions WHERE name = ?", (name,)).fetchone()
        if row is None or row[0] is None:
            raise NotFoundError(f"blob {name!r} not found")
        version = row[0]
    else:
        blob_ops.check_version(version)
        if ctx.conn.execute("SELECT 1 FROM blob_versions WHERE name = ? AND version = ?",
                            (name, version)).fetchone() is None:
            raise NotFoundError(f"blob {name!r} has no version {version}")
    acl.require(ctx, res, "read", "read the lineage of blob")
    writer = _writer(ctx.conn, res, version)
    back = [] if writer is None else [r[0] for r in ctx.conn.execute(_BACK, (writer, MAX_RUNS))]
    forward = [r[0] for r in ctx.conn.execute(_FORWARD, (res, version, MAX_RUNS))]
    back, forward = _nodes(ctx, back), _nodes(ctx, forward)
    return {"resource": res, "version": version, "written_by": back[0] if back else None,
            "back": back, "forward": forward}


def run_io(ctx: Context, run_id: int) -> dict:
    """What run ``run_id`` read and wrote (the items the caller may read); needs READ on its job."""
    if isinstance(run_id, bool) or not isinstance(run_id, int):
        raise ValueError(f"invalid run id {run_id!r}: use a run number")
    node = _nodes(ctx, [run_id])[0]
    if node["run"] is None:
        if ctx.conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
            raise NotFoundError(f"run {run_id} not found")
        raise PermissionError(ctx.user, f"run {run_id}", "read", "read its inputs and outputs")
    return {"run_id": run_id, "read": node["read"], "wrote": node["wrote"]}


def writers(ctx: Context, names: list[str]) -> dict[str, dict]:
    """For each blob name, the run that wrote its current version, when a run did:
    ``{name: {"run_id", "task_name", "job", ...}}`` (runs the caller may read)."""
    out = dict(ctx.conn.execute(
        "SELECT v.name, v.run_id FROM blobs b JOIN blob_versions v ON v.name = b.name AND v.version = b.version"
        " WHERE v.run_id IS NOT NULL AND b.name IN (SELECT value FROM json_each(?))", (json.dumps(names),)).fetchall())
    info = _runs_info(ctx, sorted(set(out.values())))
    return {name: info[run] for name, run in out.items() if run in info}
