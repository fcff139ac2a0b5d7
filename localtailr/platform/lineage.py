"""``lineage``: which run wrote a blob or key version, from which inputs, and what used it.

Built on what ``provenance`` records. Each item is named by its ACL resource
(``blob/NAME``, ``kv/ENV/KEY``, ``secret/ENV/KEY``) and a version; the caller sees
only the items (and runs) it may read.
"""

from __future__ import annotations

from collections import deque

from ..core.errors import NotFoundError, PermissionError
from . import acl
from . import blob as blob_ops
from .context import Context

MAX_RUNS = 10_000  # a walk stops after this many runs


_KV_KIND = {"kv": "key", "secret": "secret"}


def _writer(conn, resource: str, version: int) -> int | None:
    kind, _, rest = resource.partition("/")
    if kind == "blob":
        row = conn.execute("SELECT run_id FROM blob_versions WHERE name = ? AND version = ?",
                           (rest, version)).fetchone()
    else:
        env, _, key = rest.partition("/")
        row = conn.execute(
            "SELECT run_id FROM kv_versions WHERE kind = ? AND environment = ? AND key = ? AND version = ?",
            (_KV_KIND.get(kind), env, key, version)).fetchone()
    return row[0] if row else None


def _reads(conn, run_id: int) -> list[tuple[str, int]]:
    return [tuple(r) for r in conn.execute(
        "SELECT resource, version FROM run_reads WHERE run_id = ? ORDER BY resource, version", (run_id,))]


def _writes(conn, run_id: int) -> list[tuple[str, int]]:
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT 'blob/' || name, version FROM blob_versions WHERE run_id = ?1 UNION ALL"
        " SELECT CASE kind WHEN 'key' THEN 'kv/' ELSE 'secret/' END || environment || '/' || key, version"
        " FROM kv_versions WHERE run_id = ?1 ORDER BY 1, 2", (run_id,))]


def _readers(conn, resource: str, version: int) -> list[int]:
    return [r[0] for r in conn.execute(
        "SELECT run_id FROM run_reads WHERE resource = ? AND version = ? ORDER BY run_id", (resource, version))]


def _item(resource: str, version: int) -> dict:
    return {"resource": resource, "version": version}


def _runs_info(ctx: Context, run_ids: list[int]) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for i in range(0, len(run_ids), 500):
        chunk = run_ids[i:i + 500]
        rows = ctx.conn.execute(
            "SELECT r.run_id, r.task_name, r.state, r.parent_run_id, r.created_at, j.name AS job,"
            f" j.environment FROM runs r JOIN jobs j ON j.job_id = r.job_id"
            f" WHERE r.run_id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        for r in rows:
            if acl.allowed(ctx, f"job/{r['environment']}/{r['job']}", "read"):
                out[r["run_id"]] = dict(r)
    return out


def _node(ctx: Context, conn, run_id: int, readable) -> dict:
    return {"run_id": run_id,
            "read": [_item(*x) for x in _reads(conn, run_id) if readable(x[0])],
            "wrote": [_item(*x) for x in _writes(conn, run_id) if readable(x[0])]}


def _walk(ctx: Context, start: list[int], step) -> list[dict]:
    conn = ctx.conn.cursor()
    conn.row_factory = None  # plain tuples: cheaper over thousands of small queries
    cache: dict[str, bool] = {}

    def readable(res: str) -> bool:
        if res not in cache:
            cache[res] = acl.allowed(ctx, res, "read")
        return cache[res]

    seen, order = set(start), deque(start)
    nodes = []
    while order and len(nodes) < MAX_RUNS:
        run_id = order.popleft()
        node = _node(ctx, conn, run_id, readable)
        nodes.append(node)
        for nxt in step(conn, node):
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                order.append(nxt)
    info = _runs_info(ctx, [n["run_id"] for n in nodes])
    for n in nodes:
        n["run"] = info.get(n["run_id"])  # None: gone, or a job the caller may not read
    return nodes


def _back(conn, node: dict):
    for item in node["read"]:
        yield _writer(conn, item["resource"], item["version"])


def _forward(conn, node: dict):
    for item in node["wrote"]:
        yield from _readers(conn, item["resource"], item["version"])


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
    back = _walk(ctx, [writer] if writer is not None else [], _back)
    forward = _walk(ctx, _readers(ctx.conn, res, version), _forward)
    return {"resource": res, "version": version, "written_by": back[0] if back else None,
            "back": back, "forward": forward}


def run_io(ctx: Context, run_id: int) -> dict:
    """What run ``run_id`` read and wrote (the items the caller may read); needs READ on its job."""
    if isinstance(run_id, bool) or not isinstance(run_id, int):
        raise ValueError(f"invalid run id {run_id!r}: use a run number")
    if not _runs_info(ctx, [run_id]):
        if ctx.conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
            raise NotFoundError(f"run {run_id} not found")
        raise PermissionError(ctx.user, f"run {run_id}", "read", "read its inputs and outputs")
    node = _node(ctx, ctx.conn, run_id, lambda res: acl.allowed(ctx, res, "read"))
    return {"run_id": run_id, "read": node["read"], "wrote": node["wrote"]}


def writers(ctx: Context, names: list[str]) -> dict[str, dict]:
    """For each blob name, the run that wrote its current version, when a run did:
    ``{name: {"run_id", "task_name", "job", ...}}`` (runs the caller may read)."""
    out: dict[str, int] = {}
    for i in range(0, len(names), 500):
        chunk = names[i:i + 500]
        for r in ctx.conn.execute(
            "SELECT v.name, v.run_id FROM blobs b JOIN blob_versions v ON v.name = b.name"
            f" AND v.version = b.version WHERE v.run_id IS NOT NULL AND b.name IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            out[r[0]] = r[1]
    info = _runs_info(ctx, sorted(set(out.values())))
    return {name: info[run] for name, run in out.items() if run in info}
