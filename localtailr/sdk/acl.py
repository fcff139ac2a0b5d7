"""``Permission`` and ``ACL``."""

from __future__ import annotations

import json
from enum import Enum

from ..platform import acl as _acl
from ..platform import groups as _groups
from .calling import caller
from .group import Group
from .user import User


class Permission(Enum):
    """Enumeration of permission types used in Access Control Lists."""

    READ = "read"
    WRITE = "write"
    OPERATE = "operate"
    ACCESS = "access"
    PROMOTE = "promote"

    def __str__(self) -> str:
        return self.value


def _permission(value: object) -> Permission:
    try:
        return value if isinstance(value, Permission) else Permission(str(value).lower())
    except ValueError:
        names = ", ".join(p.value for p in Permission)
        raise ValueError(f"unknown permission {value!r}: expected one of {names}") from None


def _entity(value: object) -> User | Group:
    if isinstance(value, (User, Group)):
        return value
    principal = _groups.principal_id(caller(), value)
    return Group.get(-principal) if principal < 0 else User.get(principal)


class ACL:
    """An Access Control List: which users and groups hold which permissions.

    Two forms, as the reference shows::

        ACL({Permission.READ: [User.get("u1"), Group.get("g1")], Permission.WRITE: [User.get("u2")]})
        ACL(read=["user1", "group1"], write=["user2"])

    Names resolve to a user, else a group ("user:x" / "group:x" say which); an
    unknown name is a ValueError. ``ACL()`` with nothing gives the signed-in user
    every permission.
    """

    def __init__(
        self,
        permissions: dict | None = None,
        *,
        read: list | None = None,
        write: list | None = None,
        operate: list | None = None,
        access: list | None = None,
        promote: list | None = None,
    ):
        given = dict(permissions or {})
        for perm, entities in (
            ("read", read), ("write", write), ("operate", operate),
            ("access", access), ("promote", promote),
        ):
            if entities is not None:
                given.setdefault(perm, [])
                given[perm] = list(given[perm]) + list(entities)
        if not given:
            me = User.signed_user()
            given = {p: [me] for p in Permission}
        self.permissions: dict[Permission, list[User | Group]] = {}
        for perm, entities in given.items():
            if isinstance(entities, (str, User, Group)):
                entities = [entities]
            members = self.permissions.setdefault(_permission(perm), [])
            for e in entities:
                ent = _entity(e)
                if ent not in members:
                    members.append(ent)

    def to_dict(self) -> dict[str, list[int]]:
        """``{"read": [ids], ...}``: user ids, and minus the id of each group (the SDK's form)."""
        return {
            str(p): [-e.group_id if isinstance(e, Group) else e.user_id for e in entities]
            for p, entities in self.permissions.items()
        }

    @classmethod
    def from_dict(cls, acl_dict: dict) -> ACL:
        """An ACL from ``to_dict``'s form; ValueError for an unknown id or permission."""
        if not isinstance(acl_dict, dict):
            raise ValueError(f"ACL.from_dict needs a dict, not {type(acl_dict).__name__}")
        perms: dict = {}
        for perm, ids in acl_dict.items():
            entities = []
            for i in ids:
                if isinstance(i, bool) or not isinstance(i, int):
                    entities.append(i)  # a name: resolved by __init__
                else:
                    entities.append(Group.get(-i) if i < 0 else User.get(i))
            perms[_permission(perm)] = entities
        obj = cls.__new__(cls)
        obj.permissions = {}
        for perm, entities in perms.items():
            obj.permissions[perm] = [_entity(e) for e in entities]
        return obj

    @classmethod
    def many_from_dicts(cls, acl_dicts: list[dict]) -> list[ACL]:
        """ACLs from ``to_dict``'s form, each user or group looked up once for them all."""
        seen: dict[int, User | Group] = {}

        def entity(i: int) -> User | Group:
            if i not in seen:
                seen[i] = Group.get(-i) if i < 0 else User.get(i)
            return seen[i]

        out = []
        by_name = {p.value: p for p in Permission}  # an Enum call a permission costs more
        for acl_dict in acl_dicts:
            obj = cls.__new__(cls)
            obj.permissions = {by_name.get(p) or _permission(p): [seen[i] if i in seen else entity(i)
                                                                   for i in ids]
                               for p, ids in acl_dict.items()}
            out.append(obj)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ACL):
            return NotImplemented
        def norm(a: ACL) -> dict:
            return {k: sorted(v) for k, v in a.to_dict().items() if v}
        return norm(self) == norm(other)

    def names(self) -> dict[str, list[str]]:
        """``{"read": ["user:alice", "group:analysts"], ...}``: the ACL with names, not ids."""
        return {str(p): [f"{'group' if isinstance(e, Group) else 'user'}:{e.name}" for e in entities]
                for p, entities in self.permissions.items()}

    def __str__(self) -> str:
        return _acl.describe(self.names())

    def __repr__(self) -> str:
        return f"ACL({self})"


def acl_dict(value: object) -> dict | None:
    """The platform form of an ACL given as an ACL, its dict form, or None."""
    if value is None:
        return None
    if isinstance(value, ACL):
        return value.to_dict()
    if isinstance(value, dict):
        return ACL.from_dict(value).to_dict() if value else {}
    raise ValueError(f"an ACL must be an ACL or a dict of permission to ids, not {value!r}")
