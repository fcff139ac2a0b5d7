"""``Group``: a Datatailr group."""

from __future__ import annotations

from ..platform import groups
from .calling import caller


class Group:
    """Representing a Datatailr Group: name, members (user ids) and group_id."""

    def __init__(self, name: str):
        self._data = groups.get(caller(), name)

    @classmethod
    def _from_dict(cls, data: dict) -> Group:
        obj = cls.__new__(cls)
        obj._data = data
        return obj

    @property
    def name(self) -> str:
        return self._data["name"]

    @property
    def group_id(self) -> int:
        """The unique numeric identifier of the group."""
        return self._data["group_id"]

    @property
    def members(self) -> list[int]:
        """List of user IDs that are members of this group."""
        return list(self._data["members"])

    def __repr__(self) -> str:
        return f"Group(name={self.name}, members={self.members}, group_id={self.group_id})"

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Group) and other.group_id == self.group_id

    def __hash__(self) -> int:
        return hash(("group", self.group_id))

    def to_dict(self) -> dict:
        return dict(self._data)

    @staticmethod
    def from_dict(data: dict) -> Group:
        """Construct a Group from a dictionary with keys "name", "members" and "group_id"."""
        if not isinstance(data, dict):
            raise ValueError(f"Group.from_dict needs a dict, not {type(data).__name__}")
        missing = [k for k in ("name", "members", "group_id") if k not in data]
        if missing:
            raise ValueError(f"Group.from_dict: missing keys {', '.join(missing)}")
        return Group._from_dict(
            {"name": data["name"], "members": list(data["members"]), "group_id": data["group_id"]}
        )

    @staticmethod
    def get(name_or_id: str | int) -> Group:
        """Retrieve an existing group by name or numeric ID; ValueError if none."""
        return Group._from_dict(groups.get(caller(), name_or_id))

    @staticmethod
    def add(name: str) -> Group:
        """Create a new group (admins only)."""
        return Group._from_dict(groups.add(caller(), name))

    @staticmethod
    def exists(name: str) -> bool:
        return groups.exists(caller(), name)

    @staticmethod
    def ls() -> list[Group]:
        return [Group._from_dict(d) for d in groups.ls(caller())]

    @staticmethod
    def remove(name: str) -> None:
        groups.remove(caller(), name)

    def _require_name(self) -> None:
        if not self._data.get("name"):
            raise ValueError("the group name is not set")

    def add_users(self, usernames: list[str]) -> None:
        """Add one or more users to this group."""
        self._require_name()
        self._data = groups.add_users(caller(), self.name, usernames)

    def remove_users(self, usernames: list[str]) -> None:
        """Remove one or more users from this group."""
        self._require_name()
        self._data = groups.remove_users(caller(), self.name, usernames)

    def is_member(self, user: object) -> bool:
        """Whether a user (a User, an id or a name) belongs to this group."""
        self._require_name()
        return groups.is_member(caller(), self.name, getattr(user, "user_id", user))
