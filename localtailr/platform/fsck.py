"""``fsck [--fix]``: is the home consistent? One problem a line; fix what loses no data.

Checked: the database's integrity and foreign keys; that every blob's current row
matches its version; that every kept blob version's object is present, of the
right size and hash; that no object is unreferenced and no temporary file is stale;
that every run that started has its folder and logs; that every secret decrypts
with the current key. ``fix=True`` removes unreferenced objects and stale temporary
files (nothing refers to them); the rest it reports as not fixable (a missing or
corrupt object, or lost logs, cannot be made again here).
"""

from __future__ import annotations

import time

from ..store import keyring
from . import acl, blob_gc, blob_objects
from .context import Context


def _problem(kind: str, what: str, fixable: bool = False) -> dict:
    return {"kind": kind, "what": what, "fixable": fixable, "fixed": False}


def check(ctx: Context, fix: bool = False, grace: float = blob_gc.GRACE) -> dict:  # noqa: C901 - one check a kind of problem, in order
    """Check the home (admins only); ``fix`` repairs what can be repaired without losing data.
    Returns ``{"problems": [{"kind", "what", "fixable", "fixed"}], "checked": {...}}``."""
    acl.require_admin(ctx, "check the home")
    conn = ctx.conn
    problems: list[dict] = []
    checked: dict[str, int] = {}

    for (line,) in conn.execute("PRAGMA integrity_check"):
        if line != "ok":
            problems.append(_problem("database", line))
    for row in conn.execute("PRAGMA foreign_key_check"):
        problems.append(_problem("database", f"table {row[0]} row {row[1]} refers to a missing {row[2]} row"))

    for r in conn.execute(
            "SELECT b.name, b.version, b.sha256, v.sha256 AS vsha FROM blobs b LEFT JOIN blob_versions v"
            " ON v.name = b.name AND v.version = b.version WHERE v.sha256 IS NULL OR v.sha256 != b.sha256"):
        problems.append(_problem("blob", f"blob {r['name']!r}: its current version {r['version']} is not"
                                 " in its history with that content"))

    objects = conn.execute("SELECT sha256, max(size) AS size, group_concat(name || '@' || version, ', ')"
                           " AS used_by FROM blob_versions WHERE sha256 IS NOT NULL GROUP BY sha256").fetchall()
    checked["objects"] = len(objects)
    for r in objects:
        wrong = blob_objects.check(ctx, r["sha256"], r["size"])
        if wrong:
            problems.append(_problem("object", f"{wrong}; used by {r['used_by']} (cannot be fixed here:"
                                     " restore another version or put the blob again)"))

    for path in blob_gc.unreferenced(ctx):
        problems.append(_problem("object", f"object {path} is not used by any kept version", True))
    stale = blob_gc.stale_partials(ctx, grace, time.time())
    for path, size in stale:
        problems.append(_problem("partial", f"temporary file {path} ({size} bytes) was left by a killed writer", True))

    runs = conn.execute("SELECT run_id FROM runs WHERE started_at IS NOT NULL AND pid IS NOT NULL").fetchall()
    checked["runs"] = len(runs)
    for (run_id,) in runs:
        folder = ctx.home.run_dir(run_id)
        if not folder.is_dir():
            problems.append(_problem("run", f"run {run_id}: its folder {folder} is missing (its logs are lost)"))
        elif not (folder / "stdout").exists() and not (folder / "stderr").exists():
            problems.append(_problem("run", f"run {run_id}: its logs are missing from {folder}"))
    known = {str(r[0]) for r in conn.execute("SELECT run_id FROM runs")}
    if ctx.home.runs.is_dir():
        for folder in sorted(ctx.home.runs.iterdir()):
            if folder.name.isdigit() and folder.name not in known:
                problems.append(_problem("run", f"folder {folder} belongs to no run (left as it is)"))

    secrets = conn.execute("SELECT environment, key, token FROM secrets").fetchall()
    checked["secrets"] = len(secrets)
    for env, key, token in secrets:
        try:
            keyring.decrypt(ctx.home, token, key)
        except Exception:  # noqa: BLE001 - any failure to decrypt is the problem reported
            problems.append(_problem("secret", f"secret {key!r} in {env} does not decrypt with the current key"))

    if fix:
        blob_gc.remove_unreferenced(ctx)
        blob_gc.remove_stale_partials(ctx, grace, time.time())
        for p in problems:
            p["fixed"] = p["fixable"]
    return {"problems": problems, "checked": checked}
