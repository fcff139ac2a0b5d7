"""``user add|get|ls|exists|rm|disable|enable``."""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import time

from .. import store
from ..core import names
from ..store import keyring
from . import acl
from .context import Context, identity_changed

ROOT_ID = 0


def _row_to_dict(conn: sqlite3.Connection, row: sqlite3.Row) -> dict:
    groups = [
        r[0]
        for r in conn.execute(
            "SELECT g.name FROM memberships m JOIN groups g USING (group_id)"
            " WHERE m.user_id = ? ORDER BY g.name",
            (row["user_id"],),
        )
    ]
    return {
        "name": row["name"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "email": row["email"],
        "user_id": row["user_id"],
        "groups": groups,
        "is_system_user": bool(row["is_system_user"]),
        "disabled": bool(row["disabled"]),
    }


def _find(conn: sqlite3.Connection, name_or_id: str | int) -> sqlite3.Row | None:
    if isinstance(name_or_id, bool) or not isinstance(name_or_id, (str, int)):
        raise ValueError(f"a user is named by a string or an int id, not {name_or_id!r}")
    if isinstance(name_or_id, int):
        names.whole_number(name_or_id, "user id")
    column = "user_id" if isinstance(name_or_id, int) else "name"
    return conn.execute(f"SELECT * FROM users WHERE {column} = ?", (name_or_id,)).fetchone()


def _must(conn: sqlite3.Connection, name_or_id: str | int) -> sqlite3.Row:
    row = _find(conn, name_or_id)
    if row is None:
        raise ValueError(f"user {name_or_id!r} does not exist")
    return row


def get(ctx: Context, name_or_id: str | int) -> dict:
    """The user with this name or id; ValueError if there is none."""
    return _row_to_dict(ctx.conn, _must(ctx.conn, name_or_id))


def exists(ctx: Context, name: str | int) -> bool:
    return _find(ctx.conn, name) is not None


def ls(ctx: Context) -> list[dict]:
    rows = ctx.conn.execute("SELECT * FROM users ORDER BY user_id").fetchall()
    return [_row_to_dict(ctx.conn, r) for r in rows]


def _hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def signature(ctx: Context, text: str) -> str:
    """An HMAC-SHA256 of ``text`` under a key derived from the home's secret key: what
    signs a signed-in user's ticket and a login's session token."""
    key = hashlib.sha256(b"localtailr-signature:" + keyring.keys(ctx.home)[0]).digest()
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def check_password(ctx: Context, name: str, password: str) -> bool:
    """Whether ``password`` is the password of the enabled user ``name`` (False for a user
    with none, such as a system user)."""
    row = _find(ctx.conn, name) if isinstance(name, str) else None
    if row is None or row["disabled"] or not row["password_hash"] or not isinstance(password, str):
        return False
    scheme, _, rest = row["password_hash"].partition("$")
    salt, _, digest = rest.partition("$")
    if scheme != "scrypt" or not salt or not digest:
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(got.hex(), digest)


def add(
    ctx: Context,
    name: str,
    first_name: str | None = None,
    last_name: str | None = None,
    email: str | None = None,
    password: str | None = None,
    groups: list[str] | None = None,
    is_system_user: bool = False,
) -> dict:
    """Create a user (admins only); ValueError if the name is taken or a group is unknown."""
    acl.require_admin(ctx, f"add user {name!r}")
    names.principal(name, "user")
    for label, value in (("first_name", first_name), ("last_name", last_name), ("email", email),
                         ("password", password)):
        names.text(value, label)
    if email and "@" not in email:
        raise ValueError(f"invalid email {email!r}: expected an address like name@example.com")
    if groups is not None and (isinstance(groups, (str, bytes)) or not isinstance(groups, (list, tuple))):
        raise ValueError(f"groups must be a list of group names, not {groups!r}")
    groups = list(groups or [])
    for g in groups:
        names.text(g, "a group in groups", optional=False)
    with store.transaction(ctx.conn) as conn:
        if _find(conn, name) is not None:
            raise ValueError(f"user {name!r} already exists")
        group_ids = []
        for g in groups:
            row = conn.execute("SELECT group_id FROM groups WHERE name = ?", (g,)).fetchone()
            if row is None:
                raise ValueError(f"group {g!r} does not exist")
            group_ids.append(row[0])
        pw = None if (is_system_user or not password) else _hash_password(password)
        uid = store.insert(
            conn,
            "INSERT INTO users (name, first_name, last_name, email, password_hash,"
            " is_system_user, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, first_name or "", last_name or "", email, pw, int(bool(is_system_user)), time.time()),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO memberships (group_id, user_id) VALUES (?, ?)",
            [(gid, uid) for gid in group_ids],
        )
    identity_changed()
    return get(ctx, uid)


def remove(ctx: Context, name: str | int) -> None:
    """Delete a user and their ACL entries (admins only); the built-in root cannot be removed."""
    acl.require_admin(ctx, f"remove user {name!r}")
    with store.transaction(ctx.conn) as conn:
        row = _must(conn, name)
        if row["user_id"] == ROOT_ID:
            raise ValueError("the built-in user 'root' cannot be removed")
        conn.execute("DELETE FROM acl WHERE principal = ?", (row["user_id"],))
        conn.execute("DELETE FROM users WHERE user_id = ?", (row["user_id"],))
    identity_changed()


def set_disabled(ctx: Context, name: str | int, disabled: bool) -> dict:
    """Disable or enable a user (admins only). A disabled user cannot act."""
    acl.require_admin(ctx, f"{'disable' if disabled else 'enable'} user {name!r}")
    with store.transaction(ctx.conn) as conn:
        row = _must(conn, name)
        if row["user_id"] == ROOT_ID and disabled:
            raise ValueError("the built-in user 'root' cannot be disabled")
        conn.execute(
            "UPDATE users SET disabled = ? WHERE user_id = ?", (int(disabled), row["user_id"])
        )
    identity_changed()
    return get(ctx, row["user_id"])
