"""``blob retention set|ls|rm``: how long past blob versions are kept, per name prefix.

The same rules apply to past key and secret versions, matched on the key's name (in
every environment): one setting says how long ``sales/`` keeps its history, whether
it is a blob ``sales/2026.csv`` or a key ``sales/last_load``.

A rule keeps the ``keep_versions`` newest versions of a blob, and any version
replaced less than ``keep_days`` days ago (either is enough; a missing limit keeps
nothing by itself). The current version is always kept; a deleted blob's versions
are kept ``keep_days`` after the deletion only. The longest matching prefix wins;
names no rule matches follow ``DEFAULT``. The collector (``blob_gc``) applies them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import store
from ..core import names
from ..core.errors import NotFoundError
from . import acl
from .context import Context


@dataclass(frozen=True)
class Rule:
    prefix: str
    keep_versions: int | None
    keep_days: float | None


DEFAULT = Rule("", 10, 7.0)


def _check_prefix(prefix: object) -> str:
    if (not isinstance(prefix, str) or len(prefix) > 1024 or any(ord(c) < 32 for c in prefix)
            or not names.encodable(prefix)):
        raise ValueError(f"invalid prefix {prefix!r}: a blob name prefix such as 'reports/' ('' for all)")
    return prefix


def _check(prefix: object, keep_versions: object, keep_days: object) -> None:
    _check_prefix(prefix)
    if keep_versions is None and keep_days is None:
        raise ValueError("a retention rule needs keep_versions, keep_days or both")
    if keep_versions is not None and (isinstance(keep_versions, bool) or not isinstance(keep_versions, int)
                                      or keep_versions < 1):
        raise ValueError(f"invalid keep_versions {keep_versions!r}: a whole number from 1 (the current version)")
    if keep_days is not None and (isinstance(keep_days, bool) or not isinstance(keep_days, (int, float))
                                  or not 0 <= keep_days < 1e6):
        raise ValueError(f"invalid keep_days {keep_days!r}: a number of days from 0")


def set_rule(ctx: Context, prefix: str, keep_versions: int | None = None,
             keep_days: float | None = None) -> dict:
    """Set the rule for blob names starting with ``prefix`` (admins only)."""
    _check(prefix, keep_versions, keep_days)
    acl.require_admin(ctx, "set a retention rule")
    store.write(ctx.conn, "INSERT INTO retention (prefix, keep_versions, keep_days) VALUES (?, ?, ?)"
                " ON CONFLICT (prefix) DO UPDATE SET keep_versions = excluded.keep_versions,"
                " keep_days = excluded.keep_days",
                (prefix, keep_versions, None if keep_days is None else float(keep_days)))
    return {"prefix": prefix, "keep_versions": keep_versions, "keep_days": keep_days}


def ls(ctx: Context) -> list[dict]:
    """The rules, by prefix; the default (prefix '') is listed when not overridden."""
    rows = [dict(r) for r in ctx.conn.execute(
        "SELECT prefix, keep_versions, keep_days FROM retention ORDER BY prefix")]
    if not any(r["prefix"] == "" for r in rows):
        rows.insert(0, {"prefix": "", "keep_versions": DEFAULT.keep_versions,
                        "keep_days": DEFAULT.keep_days, "default": True})
    return rows


def rm(ctx: Context, prefix: str) -> None:
    """Remove the rule for ``prefix`` (admins only)."""
    _check_prefix(prefix)
    acl.require_admin(ctx, "remove a retention rule")
    if store.write(ctx.conn, "DELETE FROM retention WHERE prefix = ?", (prefix,)).rowcount == 0:
        raise NotFoundError(f"no retention rule for prefix {prefix!r}")


def rules(conn) -> list[Rule]:
    """Every rule, longest prefix first, ending with the default."""
    out = [Rule(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT prefix, keep_versions, keep_days FROM retention ORDER BY length(prefix) DESC")]
    if not any(r.prefix == "" for r in out):
        out.append(DEFAULT)
    return out


def rule_for(rules_: list[Rule], name: str) -> Rule:
    return next(r for r in rules_ if name.startswith(r.prefix))


def dropped(rule: Rule, versions: list[tuple[int, float, bool]], now: float) -> list[int]:
    """Which versions ``rule`` drops, given ``(version, created_at, deleted)`` oldest first."""
    if not versions:
        return []
    keep_for = None if rule.keep_days is None else rule.keep_days * 86400
    deleted_blob = versions[-1][2]
    out = []
    for i, (version, _, _) in enumerate(versions):
        newest = i == len(versions) - 1
        if newest and not deleted_blob:
            continue
        replaced_at = versions[i + 1][1] if not newest else versions[i][1]
        if keep_for is not None and now - replaced_at < keep_for:
            continue
        if not deleted_blob and rule.keep_versions is not None and len(versions) - i <= rule.keep_versions:
            continue
        out.append(version)
    return out
