"""Identities and ACLs as the genuine SDK sees them.

The SDK refuses a user id 0 in an ACL (``ACL.from_dict``), and localtailr's built-in
``root`` is user 0, so ``dt`` shows every user id one higher than localtailr stores it
(root is 1) and maps ids it is given back the same way. Group ids are already positive.
In an ACL dict a user is its (shown) id and a group minus its id, as in the SDK.
"""

from __future__ import annotations

from ..platform import acl as acl_ops
from ..platform import groups as group_ops
from ..platform.context import Context

USER_ID_SHIFT = 1
LETTERS = {"r": "read", "w": "write", "o": "operate", "a": "access", "p": "promote"}


def user_out(uid: int) -> int:
    return uid + USER_ID_SHIFT


def user_in(shown: int) -> int:
    if shown < USER_ID_SHIFT:
        raise ValueError(f"invalid user id {shown}: dt user ids start at {USER_ID_SHIFT}")
    return shown - USER_ID_SHIFT


def acl_out(acl: dict) -> dict:
    """A stored ACL ``{perm: [uid, -gid]}`` as the SDK reads it."""
    return {perm: [user_out(p) if p >= 0 else p for p in ids] for perm, ids in acl.items()}


def acl_in(acl: object) -> dict:
    """An ACL dict from the SDK (a job's ``acl``) as localtailr stores it."""
    if not isinstance(acl, dict):
        raise ValueError(f"invalid acl {acl!r}: expected {{permission: [user id, -group id]}}")
    out: dict[str, list[int]] = {}
    for perm, ids in acl.items():
        if not isinstance(ids, list) or any(isinstance(p, bool) or not isinstance(p, int) or p == 0
                                            for p in ids):
            raise ValueError(f"invalid acl entry {perm!r}: {ids!r}; expected non-zero ids")
        out[str(perm)] = [user_in(p) if p > 0 else p for p in ids]
    return acl_ops.normalise(out)


def acl_from_options(ctx: Context, users: str | None, groups: str | None,
                     others: str | None = None) -> dict | None:
    """``--users alice:r,bob:rw --groups analysts:r`` as a stored ACL (None: no option given)."""
    if others not in (None, "", "None"):
        raise ValueError("--others: localtailr has no 'everybody' ACL entry; name users or groups")
    if users in (None, "", "None") and groups in (None, "", "None"):
        return None
    out: dict[str, list[int]] = {}
    for text, kind in ((users, "user"), (groups, "group")):
        if text in (None, "", "None"):
            continue
        for entry in str(text).split(","):
            name, sep, letters = entry.strip().rpartition(":")
            if not sep or not name or not letters:
                raise ValueError(f"invalid --{kind}s entry {entry!r}: use name:letters, "
                                 "letters from r, w, o, a, p")
            principal = group_ops.principal_id(ctx, f"{kind}:{name}")
            for letter in letters:
                perm = LETTERS.get(letter)
                if perm is None:
                    raise ValueError(f"invalid permission letter {letter!r} in {entry!r}: "
                                     "use r, w, o, a or p")
                out.setdefault(perm, []).append(principal)
    return acl_ops.normalise(out)
