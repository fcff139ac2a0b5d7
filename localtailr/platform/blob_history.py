"""``blob history|restore|diff``: a blob's past versions, with the blob's own ACL."""

from __future__ import annotations

import difflib

from .. import store
from ..core.errors import NotFoundError
from . import acl
from . import blob as blob_ops
from .context import Context

DIFF_LIMIT = 16 << 20  # bytes: larger versions are not diffed as text


def _known(ctx: Context, name: str) -> None:
    blob_ops.validate_name(name)
    if ctx.conn.execute("SELECT 1 FROM blob_versions WHERE name = ? LIMIT 1", (name,)).fetchone() is None:
        raise NotFoundError(f"blob {name!r} not found (it has no history)")


def history(ctx: Context, name: str) -> list[dict]:
    """Every kept version of blob ``name``, oldest first: version, time, size, sha256
    (None for a deletion), deleted, who, run_id, task, commit_id. Needs READ."""
    _known(ctx, name)
    acl.require(ctx, blob_ops.resource(name), "read", "read the history of blob")
    conn = ctx.conn
    users = dict(conn.execute("SELECT user_id, name FROM users").fetchall())
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples: a third of the cost of sqlite3.Row on long histories
    rows = cur.execute("SELECT version, created_at, size, sha256, created_by, run_id, commit_id"
                       " FROM blob_versions WHERE name = ? ORDER BY version", (name,)).fetchall()
    tasks = _tasks(conn, {r[5] for r in rows if r[5] is not None})
    return [{"version": v, "time": t, "size": size, "sha256": sha, "deleted": sha is None,
             "who": users.get(by), "run_id": run, "task": tasks.get(run), "commit_id": commit}
            for v, t, size, sha, by, run, commit in rows]


def _tasks(conn, run_ids: set[int]) -> dict[int, str | None]:
    ids, out = sorted(run_ids), {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        out.update(conn.execute(f"SELECT run_id, task_name FROM runs WHERE run_id IN ({','.join('?' * len(chunk))})",
                                chunk).fetchall())
    return out


def restore(ctx: Context, name: str, version: int) -> dict:
    """Make the content of ``version`` the blob's next (current) version; needs WRITE."""
    blob_ops.check_version(version)
    _known(ctx, name)
    with store.transaction(ctx.conn) as conn:
        row = conn.execute("SELECT sha256, size FROM blob_versions WHERE name = ? AND version = ?",
                           (name, version)).fetchone()
        acl.require(ctx, blob_ops.resource(name), "write", "restore blob")
        if row is None:
            raise NotFoundError(f"blob {name!r} has no version {version}")
        if row["sha256"] is None:
            raise ValueError(f"blob {name!r} version {version} is a deletion: restore a version with content")
        if not blob_ops.object_path(ctx, row["sha256"]).exists():
            raise NotFoundError(f"blob {name!r} version {version}: its content is missing (run `localtailr fsck`)")
        out = blob_ops.record_put(ctx, conn, name, row["sha256"], row["size"], None)
    out["restored_from"] = version
    return out


def diff(ctx: Context, name: str, a: int, b: int, context_lines: int = 3) -> str:
    """A unified diff of two versions of a text blob (needs READ); ValueError if either is
    not UTF-8 text or larger than 16 MiB."""
    texts = []
    for v in (a, b):
        info = blob_ops.stat(ctx, name, blob_ops.check_version(v))
        if info["size"] > DIFF_LIMIT:
            raise ValueError(f"blob {name!r} version {v} is {info['size']} bytes: too large to diff as text")
        try:
            texts.append(blob_ops.get(ctx, name, v).decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError(f"blob {name!r} version {v} is not UTF-8 text: cannot diff it") from None
    return "".join(difflib.unified_diff(
        texts[0].splitlines(keepends=True), texts[1].splitlines(keepends=True),
        fromfile=f"{name}@{a}", tofile=f"{name}@{b}", n=context_lines))
