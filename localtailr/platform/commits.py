"""``commit ls|show``, and the commit itself: blob and key writes applied together or not at all.

A ``Commit`` stages its blob contents as it goes (written and fsynced into
temporary files, part of no blob) and remembers its key writes; ``apply()`` then
checks every permission and records every change in one transaction. A commit
that raises, is abandoned or whose process is killed leaves nothing visible (its
temporary files are collected by ``blob_gc``). Two commits on the same blob are
serialised by the database: both are recorded, each as its own version, in the
order they applied.
"""

from __future__ import annotations

import os
import time

from .. import store
from ..core import names
from ..core.errors import NotFoundError
from . import acl, blob, kv, provenance
from .context import Context

MESSAGE_LIMIT = 4096


def check_message(message: object) -> str:
    if not isinstance(message, str) or not message.strip():
        raise ValueError(f"invalid commit message {message!r}: a commit needs a non-empty message")
    if len(message) > MESSAGE_LIMIT or not names.encodable(message):
        raise ValueError("invalid commit message: at most 4096 characters of valid Unicode")
    return message


class Commit:
    """Changes staged for one commit; nothing is visible before ``apply()``."""

    def __init__(self, ctx: Context, message: str):
        self.ctx, self.message = ctx, check_message(message)
        self.ops: list[tuple] = []
        self.done = False

    def _open(self) -> None:
        if self.done:
            raise ValueError("this commit is already finished: start a new one")

    def put(self, name: str, data, acl_: dict | None = None) -> None:
        self._open()
        blob.validate_name(name)
        new_acl = acl.normalise(acl_) if acl_ is not None else None
        blob.check_writable(self.ctx, name)  # fail early; checked again in apply()
        self.ops.append(("put", name, blob.stage(self.ctx, data), new_acl))

    def put_file(self, name: str, path: str | os.PathLike, acl_: dict | None = None) -> None:
        self.put(name, blob.local_file(path), acl_)

    def delete(self, name: str) -> None:
        self._open()
        blob.validate_name(name)
        self.ops.append(("delete", name))

    def kv_put(self, key: str, value: str, acl_: dict | None = None) -> None:
        self._open()
        names.key(key, "key")
        if not isinstance(value, str):
            raise ValueError(f"a key's value must be a string, not {type(value).__name__}")
        self.ops.append(("kv_put", key, value, acl_))

    def kv_delete(self, key: str) -> None:
        self._open()
        names.key(key, "key")
        self.ops.append(("kv_delete", key))

    def apply(self) -> dict:
        """Record every staged change in one transaction; returns the commit."""
        self._open()
        ctx = self.ctx
        try:
            with store.transaction(ctx.conn) as conn:
                now = time.time()
                commit_id = store.insert(
                    conn,
                    "INSERT INTO commits (message, author, run_id, created_at) VALUES (?, ?, ?, ?)",
                    (self.message, ctx.caller.user_id, provenance.current_run(), now))
                for op in self.ops:
                    if op[0] == "put":
                        _, name, staged, new_acl = op
                        try:
                            staged.settle(ctx, conn)
                        except blob.Vanished:
                            raise RuntimeError(f"commit: the content staged for blob {name!r} was"
                                               " collected before the commit finished; nothing was applied") from None
                        blob.record_put(ctx, conn, name, staged.sha256, staged.size, new_acl, commit_id)
                    elif op[0] == "delete":
                        blob.record_delete(ctx, conn, op[1], commit_id)
                    elif op[0] == "kv_put":
                        kv.put(ctx, op[1], op[2], op[3], kv.KEYS, commit_id)
                    else:
                        kv.delete(ctx, op[1], kv.KEYS, commit_id)
        finally:
            self.abort()
        return show(ctx, commit_id)

    def abort(self) -> None:
        """Drop what was staged (its temporary files)."""
        self.done = True
        for op in self.ops:
            if op[0] == "put":
                op[2].discard()


def _commit_dict(row) -> dict:
    return {"commit_id": row["commit_id"], "message": row["message"], "author": row["author"],
            "run_id": row["run_id"], "time": row["created_at"]}


def _changes(ctx: Context, commit_id: int) -> list[dict]:
    out = []
    for r in ctx.conn.execute("SELECT name, version, sha256, size FROM blob_versions WHERE commit_id = ?"
                              " ORDER BY name", (commit_id,)):
        if acl.allowed(ctx, blob.resource(r["name"]), "read"):
            out.append({"resource": blob.resource(r["name"]), "version": r["version"],
                        "deleted": r["sha256"] is None, "size": r["size"], "sha256": r["sha256"]})
    for r in ctx.conn.execute("SELECT environment, key, version, deleted FROM kv_versions"
                              " WHERE commit_id = ? ORDER BY environment, key", (commit_id,)):
        res = kv.resource(kv.KEYS, r["environment"], r["key"])
        if ctx.caller.is_admin or acl.allowed(ctx, res, "read"):
            out.append({"resource": res, "version": r["version"], "deleted": bool(r["deleted"])})
    return out


_SELECT = ("SELECT c.commit_id, c.message, u.name AS author, c.run_id, c.created_at FROM commits c"
           " LEFT JOIN users u ON u.user_id = c.author")


def show(ctx: Context, commit_id: int) -> dict:
    """A commit with its changes (those the caller may read)."""
    if isinstance(commit_id, bool) or not isinstance(commit_id, int):
        raise ValueError(f"invalid commit id {commit_id!r}: use a commit number")
    row = ctx.conn.execute(_SELECT + " WHERE c.commit_id = ?", (commit_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"commit {commit_id} not found")
    changes = _changes(ctx, commit_id)
    if not changes and not ctx.caller.is_admin and row["author"] != ctx.user:
        raise NotFoundError(f"commit {commit_id} not found")
    return {**_commit_dict(row), "changes": changes}


def ls(ctx: Context, limit: int = 50, offset: int = 0) -> list[dict]:
    """Commits, newest first, that the caller made or that changed something it may read."""
    for what, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"invalid {what} {value!r}: use a whole number >= 0")
    out: list[dict] = []
    skipped = 0
    for row in ctx.conn.execute(_SELECT + " ORDER BY c.commit_id DESC"):
        if len(out) >= limit:
            break
        changes = _changes(ctx, row["commit_id"])
        if ctx.caller.is_admin or changes or row["author"] == ctx.user:
            if skipped < offset:
                skipped += 1
                continue
            out.append({**_commit_dict(row), "changes": len(changes)})
    return out
