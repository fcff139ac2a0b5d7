"""``dt user ...`` and ``dt group ...`` over ``platform.users`` and ``platform.groups``.

Users are shown as the SDK reads them: ``{name, user_id, first_name, last_name, email,
groups: "g1,g2", is_system}`` with ids shifted by one (see ``ids``); groups as
``{name, members: [user ids], group_id}``.
"""

from __future__ import annotations

import hmac
import time

from ..platform import groups as group_ops
from ..platform import users as user_ops
from . import filters
from .args import Args, spec
from .calling import LIST_OPTIONS, ctx, page
from .ids import user_out

SIGNATURE_TTL = 3600  # seconds a signed-user answer stays valid
USER_FIELDS = ("name", "user_id", "first_name", "last_name", "email", "is_system")
GROUP_FIELDS = ("name", "group_id")


def user_dict(u: dict) -> dict:
    return {"name": u["name"], "user_id": user_out(u["user_id"]),
            "first_name": u["first_name"] or "", "last_name": u["last_name"] or "",
            "email": u["email"] or "", "groups": ",".join(u["groups"]),
            "is_system": bool(u["is_system_user"])}


def group_dict(g: dict) -> dict:
    return {"name": g["name"], "members": [user_out(m) for m in g["members"]],
            "group_id": g["group_id"]}


def _none(value):
    return None if value in (None, "None", "") else value


def _names(args: list[str]) -> list[str]:
    return [n.strip() for a in args for n in a.split(",") if n.strip()]


# -- user ---------------------------------------------------------------------------


def user_ls(a: Args):
    keep = filters.compile(a.opt("filter"), USER_FIELDS)
    return page([u for u in map(user_dict, user_ops.ls(ctx(a))) if keep(u)], a)


def user_get(a: Args):
    return user_dict(user_ops.get(ctx(a), a.positionals[0]))


def user_exists(a: Args):
    return user_ops.exists(ctx(a), a.positionals[0])


def user_add(a: Args):
    groups = _none(a.opt("groups"))
    user = user_ops.add(
        ctx(a), a.positionals[0], first_name=_none(a.opt("first-name")),
        last_name=_none(a.opt("last-name")), email=_none(a.opt("email")),
        password=_none(a.opt("password")), groups=_names([groups]) if groups else None,
        is_system_user=a.flag("system"))
    return user_dict(user)


def user_rm(a: Args):
    user_ops.remove(ctx(a), a.positionals[0])


def user_enable(a: Args):
    return user_dict(user_ops.set_disabled(ctx(a), a.positionals[0], False))


def user_disable(a: Args):
    return user_dict(user_ops.set_disabled(ctx(a), a.positionals[0], True))


def user_add_to_group(a: Args):
    return group_dict(group_ops.add_users(ctx(a), a.positionals[1], [a.positionals[0]]))


def user_rm_from_group(a: Args):
    return group_dict(group_ops.remove_users(ctx(a), a.positionals[1], [a.positionals[0]]))


def _signature(c, name: str, expiry: int) -> str:
    return user_ops.signature(c, f"signed-user:{name}:{expiry}")


def signed_user(a: Args):
    """The caller, signed: ``{"name", "expiry", "signature"}`` (checked by ``user verify``)."""
    c = ctx(a)
    name = c.user
    if a.positionals and a.positionals[0] != name:
        raise PermissionError(f"you are signed in as {name!r}, not {a.positionals[0]!r}")
    expiry = int(time.time()) + SIGNATURE_TTL
    return {"name": name, "expiry": expiry, "signature": _signature(c, name, expiry)}


def user_verify(a: Args):
    name, expiry, signature = a.positionals
    c = ctx(a)
    try:
        when = int(expiry)
    except ValueError:
        raise ValueError(f"invalid expiration time {expiry!r}: use seconds since 1970") from None
    return when > time.time() and hmac.compare_digest(_signature(c, name, when), signature)


# -- group --------------------------------------------------------------------------


def group_ls(a: Args):
    keep = filters.compile(a.opt("filter"), GROUP_FIELDS)
    return page([g for g in map(group_dict, group_ops.ls(ctx(a))) if keep(g)], a)


def group_get(a: Args):
    return group_dict(group_ops.get(ctx(a), a.positionals[0]))


def group_exists(a: Args):
    return group_ops.exists(ctx(a), a.positionals[0])


def group_add(a: Args):
    return group_dict(group_ops.add(ctx(a), a.positionals[0]))


def group_rm(a: Args):
    group_ops.remove(ctx(a), a.positionals[0])


def group_add_users(a: Args):
    return group_dict(group_ops.add_users(ctx(a), a.positionals[0], _names(a.positionals[1:])))


def group_rm_users(a: Args):
    return group_dict(group_ops.remove_users(ctx(a), a.positionals[0], _names(a.positionals[1:])))


_LS = spec("", "json pretty", LIST_OPTIONS)
_GET = spec("username", "json pretty")
_GROUP_GET = spec("group_name", "json pretty")
COMMANDS = {
    "user": {
        "ls": (_LS, user_ls),
        "get": (_GET, user_get),
        "exists": (spec("username"), user_exists),
        "add": (spec("username", "system json-enrichened",
                      "first-name last-name password groups users-can-mimic email"), user_add),
        "rm": (spec("username"), user_rm),
        "enable": (spec("username"), user_enable),
        "disable": (spec("username"), user_disable),
        "add-to-group": (spec("username group_name"), user_add_to_group),
        "rm-from-group": (spec("username group_name"), user_rm_from_group),
        "signed-user": (spec("username", "pretty", min=0), signed_user),
        "verify": (spec("username expiration_time signature"), user_verify),
    },
    "group": {
        "ls": (_LS, group_ls),
        "get": (_GROUP_GET, group_get),
        "exists": (spec("group_name"), group_exists),
        "add": (spec("group_name", "json-enrichened"), group_add),
        "rm": (spec("group_name"), group_rm),
        "add-users": (spec("group_name username ..."), group_add_users),
        "rm-users": (spec("group_name username ..."), group_rm_users),
    },
}
_NO_LOGIN = "localtailr has no passwords to log in with or tokens: the caller is LOCALTAILR_USER"
UNSUPPORTED = {
    "user": {
        "modify": "localtailr cannot modify a user in place: remove it and add it again",
        "change-password": _NO_LOGIN, "logout": _NO_LOGIN, "verify-token": _NO_LOGIN,
        "update-api-token": _NO_LOGIN, "get-api-token-hash-by-id": _NO_LOGIN,
        "associate-token": _NO_LOGIN, "reset-token": _NO_LOGIN, "has-mfa": _NO_LOGIN,
        "_pre_test_commands": "a platform self-test, not available on localtailr",
        "_pos_test_commands": "a platform self-test, not available on localtailr",
    },
    "group": {
        "rename": "localtailr cannot rename a group: add a new one and move its members",
        "_pre_test_commands": "a platform self-test, not available on localtailr",
        "_pos_test_commands": "a platform self-test, not available on localtailr",
    },
}
