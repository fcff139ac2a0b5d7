"""What ``kv put`` says it did (shared by the click command and the fast path, without click)."""

from __future__ import annotations

from ..platform import acl as acl_ops
from ..platform import groups
from ..platform import kv as kv_ops


def named_acl(ctx, acl: dict) -> dict:
    """An ACL of principal ids as names (``user:alice``, ``group:analysts``)."""
    return {p: [groups.principal_name(ctx, i) for i in ids] for p, ids in acl.items()}


def put_report(ctx, key: str, kind, existed: bool = False, added: dict | None = None) -> tuple[dict, str]:
    """The JSON and the line for a put of ``key``: where it went and the ACL it now has."""
    acl = named_acl(ctx, kv_ops.acls(ctx, key, kind))
    what = "secret " if kind.secure else ""
    text = f"stored {what}{key} in {ctx.environment}; ACL: {acl_ops.describe(acl)}"
    if existed:
        text += " (replaced the old ACL; --add-read ... adds entries instead)"
    elif added:
        text += f" (added {acl_ops.describe(named_acl(ctx, added))})"
    return {"key": key, "environment": ctx.environment, "acl": acl, "acl_replaced": existed}, text
