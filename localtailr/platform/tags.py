"""``tag get|set|ls``: platform-wide name/value tags.

Anyone may read tags; setting one needs an admin. The daemon keeps its
heartbeats here (``daemon.heartbeat``, ``scheduler.heartbeat``, ...), which is
how the status page and ``/api/health`` know it is alive.
"""

from __future__ import annotations

from .. import store
from ..core import names
from ..core.errors import NotFoundError
from . import acl
from .context import Context


def get(ctx: Context, name: str) -> str:
    names.key(name, "tag")
    row = ctx.conn.execute("SELECT value FROM tags WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFoundError(f"tag {name!r} not found")
    return row[0]


def set(ctx: Context, name: str, value: str) -> None:  # noqa: A001 - the platform's verb
    """Set tag ``name`` to ``value`` (admins only)."""
    names.key(name, "tag")
    if not isinstance(value, str):
        raise ValueError(f"a tag's value must be a string, not {type(value).__name__}")
    acl.require_admin(ctx, f"set tag {name!r}")
    with store.transaction(ctx.conn) as conn:
        conn.execute(
            "INSERT INTO tags (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )


def ls(ctx: Context, prefix: str = "") -> list[dict]:
    """Every tag whose name starts with ``prefix``: ``[{"name", "value"}]``."""
    rows = ctx.conn.execute(
        "SELECT name, value FROM tags WHERE substr(name, 1, ?) = ? ORDER BY name",
        (len(prefix), prefix),
    ).fetchall()
    return [dict(r) for r in rows]
