"""``blob gc``: apply retention, then free what nothing refers to any more.

Three passes, each safe beside live writers:

1. past versions the retention rules drop are forgotten (a deleted blob whose
   versions are all gone loses its ACL too), and so are past key and secret versions
   (the same rules, matched on the key's name);
2. objects no kept version refers to are removed: each is checked again and
   unlinked inside a write transaction, and a put moves its object into place
   and refers to it inside one too, so the two never cross;
3. temporary ``.part`` files left by killed puts and commits are removed when
   their writer (named by the pid in the file's name) is gone, or when they are
   older than a day; never one younger than the grace period.
"""

from __future__ import annotations

import os
import time

from .. import store
from . import acl, retention
from .blob_objects import objects_dir, tmp_dir
from .context import Context

GRACE = 3600.0  # seconds: a temporary file younger than this is never touched
ABANDONED = 86400.0  # seconds: a temporary file older than this is stale whoever wrote it
SOURCES_KEPT = 30 * 86400.0  # seconds a put file's stamp is remembered


def collect(ctx: Context, grace: float = GRACE, now: float | None = None) -> dict:
    """Apply retention and remove unreferenced objects and stale temporary files (admins
    only); returns what was freed."""
    acl.require_admin(ctx, "collect garbage")
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        raise ValueError(f"invalid grace {grace!r}: a number of seconds from 0")
    now = time.time() if now is None else now
    report = {"versions_dropped": _prune_blobs(ctx, now), "key_versions_dropped": _prune_keys(ctx, now)}
    report["objects_removed"], report["object_bytes"] = remove_unreferenced(ctx)
    store.write(ctx.conn, "DELETE FROM blob_sources WHERE recorded_at < ?", (now - SOURCES_KEPT,))
    report["partials_removed"], report["partial_bytes"] = remove_stale_partials(ctx, grace, now)
    report["bytes_freed"] = report["object_bytes"] + report["partial_bytes"]
    return report


def _prune_blobs(ctx: Context, now: float) -> int:
    rules = retention.rules(ctx.conn)
    by_name: dict[str, list] = {}
    for name, version, created, sha in ctx.conn.execute(
            "SELECT name, version, created_at, sha256 FROM blob_versions ORDER BY name, version"):
        by_name.setdefault(name, []).append((version, created, sha is None))
    dropped = 0
    for name, versions in by_name.items():
        drop = retention.dropped(retention.rule_for(rules, name), versions, now)
        if not drop:
            continue
        with store.transaction(ctx.conn) as conn:
            conn.executemany("DELETE FROM blob_versions WHERE name = ? AND version = ?",
                             [(name, v) for v in drop])
            if conn.execute("SELECT 1 FROM blob_versions WHERE name = ? LIMIT 1", (name,)).fetchone() is None:
                acl.remove(conn, f"blob/{name}")
        dropped += len(drop)
    return dropped


def _prune_keys(ctx: Context, now: float) -> int:
    rules = retention.rules(ctx.conn)
    groups: dict[tuple, list] = {}
    for kind, env, key, version, created, deleted in ctx.conn.execute(
            "SELECT kind, environment, key, version, created_at, deleted FROM kv_versions"
            " ORDER BY kind, environment, key, version"):
        groups.setdefault((kind, env, key), []).append((version, created, bool(deleted)))
    dropped = 0
    for (kind, env, key), versions in groups.items():
        drop = retention.dropped(retention.rule_for(rules, key), versions, now)
        if drop:
            with store.transaction(ctx.conn) as conn:
                conn.executemany(
                    "DELETE FROM kv_versions WHERE kind = ? AND environment = ? AND key = ? AND version = ?",
                    [(kind, env, key, v) for v in drop])
            dropped += len(drop)
    return dropped


def unreferenced(ctx: Context) -> list:
    """The object files no kept version refers to."""
    used = {r[0] for r in ctx.conn.execute("SELECT DISTINCT sha256 FROM blob_versions WHERE sha256 IS NOT NULL")}
    return [p for p in objects_dir(ctx).glob("*/*") if p.parent.name + p.name not in used]


def remove_unreferenced(ctx: Context) -> tuple[int, int]:
    """Remove the unreferenced objects: (how many, bytes)."""
    n = freed = 0
    for path in unreferenced(ctx):
        sha = path.parent.name + path.name
        with store.transaction(ctx.conn) as conn:
            if conn.execute("SELECT 1 FROM blob_versions WHERE sha256 = ? LIMIT 1", (sha,)).fetchone():
                continue  # referred to since the listing
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            conn.execute("DELETE FROM blob_objects WHERE sha256 = ?", (sha,))
            conn.execute("DELETE FROM blob_sources WHERE sha256 = ?", (sha,))
        n, freed = n + 1, freed + size
    return n, freed


def writer_alive(path) -> bool:
    pid = path.name.split("-", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_partials(ctx: Context, grace: float, now: float) -> list:
    """The temporary files no live put or commit is writing: (path, size)."""
    out = []
    for path in tmp_dir(ctx).glob("*.part"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        age = now - st.st_mtime
        if age >= grace and (age >= ABANDONED or not writer_alive(path)):
            out.append((path, st.st_size))
    return out


def remove_stale_partials(ctx: Context, grace: float, now: float) -> tuple[int, int]:
    """Remove the stale temporary files: (how many, bytes)."""
    n = freed = 0
    for path, size in stale_partials(ctx, grace, now):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        n, freed = n + 1, freed + size
    return n, freed
