"""``group add|get|ls|exists|rm|add-users|rm-users``."""

from __future__ import annotations

import sqlite3
import time

from .. import store
from ..core import names
from . import acl
from .context import ADMIN_GROUP_ID, Context, identity_changed

ADMIN_ID = ADMIN_GROUP_ID  # the built-in admin group (made by migration 1)


def _row_to_dict(conn: sqlite3.Connection, row: sqlite3.Row) -> dict:
    members = [
        r[0]
        for r in conn.execute(
            "SELECT user_id FROM memberships WHERE group_id = ? ORDER BY user_id",
            (row["group_id"],),
        )
    ]
    return {"name": row["name"], "group_id": row["group_id"], "members": members}


def _find(conn: sqlite3.Connection, name_or_id: str | int) -> sqlite3.Row | None:
    if isinstance(name_or_id, bool) or not isinstance(name_or_id, (str, int)):
        raise ValueError(f"a group is named by a string or an int id, not {name_or_id!r}")
    if isinstance(name_or_id, int):
        names.whole_number(name_or_id, "group id")
    column = "group_id" if isinstance(name_or_id, int) else "name"
    return conn.execute(f"SELECT * FROM groups WHERE {column} = ?", (name_or_id,)).fetchone()


def _must(conn: sqlite3.Connection, name_or_id: str | int) -> sqlite3.Row:
    row = _find(conn, name_or_id)
    if row is None:
        raise ValueError(f"group {name_or_id!r} does not exist")
    return row


def get(ctx: Context, name_or_id: str | int) -> dict:
    """The group with this name or id; ValueError if there is none."""
    return _row_to_dict(ctx.conn, _must(ctx.conn, name_or_id))


def exists(ctx: Context, name: str | int) -> bool:
    return _find(ctx.conn, name) is not None


def ls(ctx: Context) -> list[dict]:
    rows = ctx.conn.execute("SELECT * FROM groups ORDER BY group_id").fetchall()
    return [_row_to_dict(ctx.conn, r) for r in rows]


def add(ctx: Context, name: str) -> dict:
    """Create a group (admins only)."""
    acl.require_admin(ctx, f"add group {name!r}")
    names.principal(name, "group")
    with store.transaction(ctx.conn) as conn:
        if _find(conn, name) is not None:
            raise ValueError(f"group {name!r} already exists")
        gid = store.insert(
            conn, "INSERT INTO groups (name, created_at) VALUES (?, ?)", (name, time.time())
        )
    identity_changed()
    return get(ctx, gid)


def remove(ctx: Context, name: str | int) -> None:
    """Delete a group and its ACL entries (admins only); the ``admin`` group cannot be removed."""
    acl.require_admin(ctx, f"remove group {name!r}")
    with store.transaction(ctx.conn) as conn:
        row = _must(conn, name)
        if row["group_id"] == ADMIN_ID:
            raise ValueError("the built-in group 'admin' cannot be removed")
        conn.execute("DELETE FROM acl WHERE principal = ?", (-row["group_id"],))
        conn.execute("DELETE FROM groups WHERE group_id = ?", (row["group_id"],))
    identity_changed()


def _user_ids(conn: sqlite3.Connection, users: list) -> list[int]:
    if isinstance(users, (str, int)):
        users = [users]
    if not isinstance(users, (list, tuple, set, frozenset)):
        raise ValueError(f"invalid users {users!r}: give a user name or id, or a list of them")
    ids = []
    for u in users:
        u = getattr(u, "name", u)
        if isinstance(u, bool) or not isinstance(u, (str, int)):
            raise ValueError(f"invalid user {u!r} in users: give a user's name or int id")
        if isinstance(u, int):
            names.whole_number(u, "user id")
        column = "user_id" if isinstance(u, int) and not isinstance(u, bool) else "name"
        row = conn.execute(f"SELECT user_id FROM users WHERE {column} = ?", (u,)).fetchone()
        if row is None:
            raise ValueError(f"user {u!r} does not exist")
        ids.append(row[0])
    return ids


def add_users(ctx: Context, name: str | int, users: list) -> dict:
    """Add users (names or ids) to a group (admins only); all or none are added."""
    acl.require_admin(ctx, f"add users to group {name!r}")
    with store.transaction(ctx.conn) as conn:
        gid = _must(conn, name)["group_id"]
        conn.executemany(
            "INSERT OR IGNORE INTO memberships (group_id, user_id) VALUES (?, ?)",
            [(gid, uid) for uid in _user_ids(conn, users)],
        )
    identity_changed()
    return get(ctx, gid)


def remove_users(ctx: Context, name: str | int, users: list) -> dict:
    """Remove users from a group (admins only). Root stays in ``admin``."""
    acl.require_admin(ctx, f"remove users from group {name!r}")
    with store.transaction(ctx.conn) as conn:
        gid = _must(conn, name)["group_id"]
        ids = _user_ids(conn, users)
        if gid == ADMIN_ID and 0 in ids:
            raise ValueError("the built-in user 'root' cannot leave the 'admin' group")
        conn.executemany(
            "DELETE FROM memberships WHERE group_id = ? AND user_id = ?",
            [(gid, uid) for uid in ids],
        )
    identity_changed()
    return get(ctx, gid)


def is_member(ctx: Context, name: str | int, user: object) -> bool:
    """Whether ``user`` (a name or id; anything else is a ValueError) is in group ``name``."""
    row = _must(ctx.conn, name)
    uid = _user_ids(ctx.conn, [user])[0]
    return (
        ctx.conn.execute(
            "SELECT 1 FROM memberships WHERE group_id = ? AND user_id = ?", (row["group_id"], uid)
        ).fetchone()
        is not None
    )


def principal_id(ctx: Context, entity: object) -> int:
    """The ACL principal for a user or group given as an object or a name.

    A name that is both a user and a group means the user; ``group:name`` and
    ``user:name`` say which.
    """
    gid = getattr(entity, "group_id", None)
    if gid is not None:
        return -int(gid)
    uid = getattr(entity, "user_id", None)
    if uid is not None:
        return int(uid)
    if isinstance(entity, int) and not isinstance(entity, bool):
        return entity
    if not isinstance(entity, str):
        raise ValueError(f"an ACL entry must be a user, a group or a name, not {entity!r}")
    kind, _, bare = entity.partition(":") if ":" in entity else ("", "", entity)
    if kind in ("", "user"):
        row = ctx.conn.execute("SELECT user_id FROM users WHERE name = ?", (bare,)).fetchone()
        if row is not None:
            return row[0]
    if kind in ("", "group"):
        row = ctx.conn.execute("SELECT group_id FROM groups WHERE name = ?", (bare,)).fetchone()
        if row is not None:
            return -row[0]
    raise ValueError(f"ACL names {entity!r}, which is neither a user nor a group")


def principal_name(ctx: Context, principal: int) -> str:
    """``user:name`` or ``group:name`` for an ACL principal."""
    if principal >= 0:
        row = ctx.conn.execute("SELECT name FROM users WHERE user_id = ?", (principal,)).fetchone()
        return f"user:{row[0]}" if row else f"user:#{principal}"
    row = ctx.conn.execute("SELECT name FROM groups WHERE group_id = ?", (-principal,)).fetchone()
    return f"group:{row[0]}" if row else f"group:#{-principal}"
