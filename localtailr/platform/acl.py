"""Access control lists: who may do what to a resource.

A resource is named by a string such as ``kv/dev/db_url``, ``secret/prod/token``,
``blob/reports/q1.csv`` or ``job/dev/my-job``. An ACL maps a permission (read,
write, operate, access, promote) to principals: a user id, or minus a group id
(the published SDK's encoding). Members of the ``admin`` group may do
everything. A resource created without an ACL gives its creator every
permission and nobody else any.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping

from ..core.errors import PermissionError
from .context import Context

PERMISSIONS = ("read", "write", "operate", "access", "promote")


def normalise(acl: Mapping[str, Iterable[int]] | None) -> dict[str, list[int]]:
    """Validate an ACL given as ``{permission: [principal, ...]}``; return it sorted."""
    if acl is None:
        return {}
    if not isinstance(acl, Mapping):
        raise ValueError(f"an ACL must be a mapping of permission to principals, not {acl!r}")
    out: dict[str, list[int]] = {}
    for permission, principals in acl.items():
        name = str(getattr(permission, "value", permission)).lower()
        if name not in PERMISSIONS:
            raise ValueError(
                f"unknown permission {permission!r}: expected one of {', '.join(PERMISSIONS)}"
            )
        ids = []
        for p in principals:
            if isinstance(p, bool) or not isinstance(p, int):
                raise ValueError(
                    f"ACL principal {p!r} for {name} must be a user id or minus a group id"
                )
            ids.append(p)
        out[name] = sorted(set(out.get(name, [])) | set(ids))
    return out


def describe(named: Mapping[str, Iterable[str]]) -> str:
    """The one text form of an ACL, everywhere (CLI, page, reprs), with names not ids:
    ``read: user:alice, group:analysts; write: user:root`` ("-" for an empty ACL)."""
    parts = [f"{perm}: {', '.join(names)}" for perm, names in named.items() if names]
    return "; ".join(parts) or "-"


def check_principals(conn: sqlite3.Connection, acl: Mapping[str, list[int]]) -> None:
    """Refuse an ACL that names a user or group that does not exist."""
    for permission, principals in acl.items():
        for p in principals:
            table, column, value = (
                ("users", "user_id", p) if p >= 0 else ("groups", "group_id", -p)
            )
            if conn.execute(f"SELECT 1 FROM {table} WHERE {column} = ?", (value,)).fetchone() is None:
                kind = "user" if p >= 0 else "group"
                raise ValueError(f"ACL for {permission} names {kind} id {value}, which does not exist")


def get(conn: sqlite3.Connection, resource: str) -> dict[str, list[int]]:
    """The ACL of ``resource`` as ``{permission: [principal, ...]}`` (permissions with none left out)."""
    out: dict[str, list[int]] = {}
    for row in conn.execute(
        "SELECT permission, principal FROM acl WHERE resource = ? ORDER BY permission, principal",
        (resource,),
    ):
        out.setdefault(row[0], []).append(row[1])
    return {p: out[p] for p in PERMISSIONS if p in out}


def replace(conn: sqlite3.Connection, resource: str, acl: Mapping[str, list[int]]) -> None:
    """Set the ACL of ``resource`` to exactly ``acl`` (inside the caller's transaction)."""
    conn.execute("DELETE FROM acl WHERE resource = ?", (resource,))
    add(conn, resource, acl)


def add(conn: sqlite3.Connection, resource: str, acl: Mapping[str, list[int]]) -> None:
    """Add the entries of ``acl`` to those ``resource`` has (inside the caller's transaction)."""
    conn.executemany(
        "INSERT OR IGNORE INTO acl (resource, permission, principal) VALUES (?, ?, ?)",
        [(resource, perm, p) for perm, principals in acl.items() for p in principals],
    )


def owner_acl(user_id: int) -> dict[str, list[int]]:
    """The ACL a resource gets when created without one: every permission for its creator."""
    return {p: [user_id] for p in PERMISSIONS}


def remove(conn: sqlite3.Connection, resource: str) -> None:
    conn.execute("DELETE FROM acl WHERE resource = ?", (resource,))


def allowed(ctx: Context, resource: str, permission: str) -> bool:
    """Whether the caller holds ``permission`` on ``resource``."""
    if ctx.caller.is_admin:
        return True
    principals = ctx.caller.principals
    marks = ",".join("?" * len(principals))
    row = ctx.conn.execute(
        f"SELECT 1 FROM acl WHERE resource = ? AND permission = ? AND principal IN ({marks})",
        (resource, permission, *principals),
    ).fetchone()
    return row is not None


def require(ctx: Context, resource: str, permission: str, action: str = "") -> None:
    """Raise PermissionError unless the caller holds ``permission`` on ``resource``."""
    if not allowed(ctx, resource, permission):
        raise PermissionError(ctx.user, resource, permission, action)


def require_admin(ctx: Context, action: str) -> None:
    if not ctx.caller.is_admin:
        raise PermissionError(ctx.user, "the platform", "admin", action)
