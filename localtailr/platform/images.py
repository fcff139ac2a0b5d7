"""``image ls|log|gc|rm``: the cached job environments under ``<home>/venvs/``.

Every user may list images and read their build logs (they hold no secrets: requirements
and build output); removing one (``rm``, ``gc``) needs an admin, as it slows every job
that used it. An image a pending, building, starting or running run uses is never removed.
The builder is ``runtime.images.cache``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterable

from .. import store
from ..core.home import Home
from ..core.keylock import Timeout, build_lock
from ..core.runs import ACTIVE
from . import acl
from .context import Context

MARKER = "localtailr-image.json"
LOG_NAME = "build.log"


def ls(ctx: Context) -> list[dict]:
    """Every image: key, python, requirements, state, size, created_at, last_used, in_use."""
    return list_images(ctx.home)


def log(ctx: Context, key: str) -> str:
    """The build log of an image (a unique key prefix is enough)."""
    return image_log(ctx.home, key)


def rm(ctx: Context, key: str) -> str:
    """Remove one image (admin only; refused while a run uses it); its full key."""
    acl.require_admin(ctx, "remove an image")
    full = resolve_key(ctx.home, key)
    if full in in_use_keys(ctx.home):
        raise ValueError(f"environment {full[:12]} is in use by a run; stop the run first")
    if not remove_image(ctx.home, full):
        raise ValueError(f"environment {full[:12]} is being built; try again when it is done")
    return full


def gc(ctx: Context, older_than_seconds: float) -> list[str]:
    """Remove the images unused for ``older_than_seconds`` (admin only); their keys."""
    acl.require_admin(ctx, "remove images")
    return collect(ctx.home, older_than_seconds)


# -- listing, logs, garbage collection ------------------------------------------------


def in_use_keys(home: Home) -> set[str]:
    """Image keys of runs that are pending, building, starting or running."""
    marks = ",".join("?" * len(ACTIVE))
    rows = store.connection(home).execute(
        f"SELECT DISTINCT image_key FROM runs WHERE state IN ({marks}) "
        "AND image_key IS NOT NULL",
        ACTIVE,
    ).fetchall()
    return {row[0] for row in rows}


def list_images(home: Home) -> list[dict]:
    """Every image: key, python, requirements, state, size, created_at, last_used, in_use,
    path (newest use first)."""
    home.ensure()
    rows = {row["key"]: dict(row) for row in
            store.connection(home).execute("SELECT * FROM images").fetchall()}
    on_disk = {}
    for entry in home.venvs.iterdir():
        ready = entry / MARKER
        if not entry.name.startswith((".", "failed-")) and ready.exists():
            on_disk[entry.name] = ready
    used = in_use_keys(home)
    out = []
    for key in set(rows) | set(on_disk):
        row = rows.get(key)
        marker = on_disk.get(key)
        if row is None:
            try:
                data = json.loads(on_disk[key].read_text())  # only on disk: it has a marker
            except (OSError, ValueError):
                data = {}
            row = {"key": key, "python": data.get("python", ""),
                   "requirements": json.dumps(data.get("requirements", [])),
                   "state": "ready", "size": data.get("size"),
                   "created_at": data.get("created_at"), "last_used": None}
        last_used = row["last_used"]
        if marker is not None:
            last_used = max(last_used or 0.0, marker.stat().st_mtime)
        state = row["state"]
        if marker is None and state == "ready":
            state = "missing"
        elif marker is None and state == "building" and _lock_free(home, key):
            state = "interrupted"  # its builder was killed: nothing half-built is used
        out.append({
            "key": key,
            "python": row["python"],
            "requirements": json.loads(row["requirements"] or "[]"),
            "state": state,
            "size": row["size"],
            "created_at": row["created_at"],
            "last_used": last_used,
            "in_use": key in used,
            "path": str(home.venvs / key) if marker is not None else None,
        })
    out.sort(key=lambda r: r["last_used"] or r["created_at"] or 0, reverse=True)
    return out


def resolve_key(home: Home, key: str) -> str:
    """The full key for ``key`` or a unique prefix of one."""
    if not re.fullmatch(r"[0-9a-f]{1,64}", key or ""):
        raise ValueError(f"image key {key!r} is not valid; accepted: the hex key shown by "
                         "'localtailr image ls', or a unique prefix of it")
    known = {r["key"] for r in list_images(home)}
    known |= {p.name[len("failed-"):-len(".log")] for p in home.venvs.glob("failed-*.log")}
    matches = sorted(k for k in known if k.startswith(key))
    if key in known:
        return key
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ValueError(f"no image {key!r}; see 'localtailr image ls'")
    raise ValueError(f"image key {key!r} is ambiguous: {', '.join(matches)}")


def image_log(home: Home, key: str) -> str:
    """The build log of an image (of its last failed build when it has none)."""
    key = resolve_key(home, key)
    for path in (home.venvs / key / LOG_NAME, home.venvs / f"failed-{key}.log"):
        if path.exists():
            return path.read_text(encoding="utf-8", errors="replace")
    raise ValueError(f"image {key!r} has no build log")


def remove_image(home: Home, key: str) -> bool:
    """Remove one image if no process is building it; True if removed."""
    lock = build_lock(home, key)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return False
    try:
        final = home.venvs / key
        if final.exists():
            trash = home.venvs / f".trash-{key}-{os.getpid()}"
            os.rename(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        (home.venvs / f"failed-{key}.log").unlink(missing_ok=True)
        conn = store.connection(home)
        with store.transaction(conn):
            conn.execute("DELETE FROM images WHERE key = ?", (key,))
        return True
    finally:
        lock.release()


def collect(home: Home, older_than_seconds: float, in_use_keys: Iterable[str] = ()) -> list[str]:
    """Remove images not used for ``older_than_seconds``; never one in use.

    In use: a key in ``in_use_keys`` or the image of a pending/building/starting/running
    run. Also clears failed-build logs and leftovers of killed builds as old.

    Returns:
        The keys removed.
    """
    if older_than_seconds < 0:
        raise ValueError(f"older_than_seconds {older_than_seconds!r} must be >= 0")
    keep = set(in_use_keys) | _in_use(home)
    cutoff = time.time() - older_than_seconds
    removed = []
    for image in list_images(home):
        if image["key"] in keep or image["state"] == "building":
            continue
        if (image["last_used"] or image["created_at"] or 0) > cutoff:
            continue
        if remove_image(home, image["key"]):
            removed.append(image["key"])
    for entry in home.venvs.iterdir():
        if not entry.name.startswith((".tmp-", ".trash-", "failed-")):
            continue
        if entry.lstat().st_mtime > cutoff:
            continue
        key = entry.name.split("-")[1].split(".")[0]
        if key in keep:
            continue
        if entry.name.startswith(".tmp-") and not _lock_free(home, key):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return removed


def _in_use(home: Home) -> set[str]:
    return in_use_keys(home)


def _lock_free(home: Home, key: str) -> bool:
    lock = build_lock(home, key)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return False
    lock.release()
    return True
