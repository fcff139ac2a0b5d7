"""``User``: a Datatailr user."""

from __future__ import annotations

from ..platform import users
from ..platform.context import ROOT_USER, USER_VAR
from .calling import caller


class User:
    """Representing a Datatailr User.

    Attributes: first_name, last_name, name, email, user_id, groups, is_system_user.
    """

    def __init__(self, name: str | None = None, id: int | None = None):
        who = name if name is not None else id
        if who is None:
            raise ValueError("User needs a name or an id")
        self._load(users.get(caller(), who))

    def _load(self, data: dict) -> None:
        self._data = data

    @classmethod
    def _from_dict(cls, data: dict) -> User:
        obj = cls.__new__(cls)
        obj._load(data)
        return obj

    @property
    def name(self) -> str:
        """The username."""
        return self._data["name"]

    @property
    def first_name(self) -> str:
        return self._data["first_name"]

    @property
    def last_name(self) -> str:
        return self._data["last_name"]

    @property
    def email(self) -> str | None:
        return self._data["email"]

    @property
    def user_id(self) -> int:
        """The unique numeric identifier of the user."""
        return self._data["user_id"]

    @property
    def groups(self) -> list[str]:
        """List of group names the user belongs to."""
        return list(self._data["groups"])

    @property
    def is_system_user(self) -> bool:
        return self._data["is_system_user"]

    @property
    def disabled(self) -> bool:
        return self._data["disabled"]

    def verify(self) -> None:
        """Refresh the user information from the platform."""
        self._load(users.get(caller(), self.user_id))

    def to_dict(self) -> dict:
        return dict(self._data)

    def __repr__(self) -> str:
        d = self._data
        return (
            f"User(name={d['name']}, first_name={d['first_name']}, last_name={d['last_name']},"
            f" email={d['email']}, user_id={d['user_id']}, groups={d['groups']},"
            f" is_system_user={d['is_system_user']})"
        )

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, User) and other.user_id == self.user_id

    def __hash__(self) -> int:
        return hash(("user", self.user_id))

    @staticmethod
    def signed_user() -> User:
        """The currently signed-in user: ``LOCALTAILR_USER``, else the built-in admin ``root``."""
        ctx = caller()
        return User._from_dict(users.get(ctx, ctx.caller.user_id))

    @staticmethod
    def add(
        name: str,
        first_name: str | None = None,
        last_name: str | None = None,
        email: str | None = None,
        password: str | None = None,
        groups: list[str] | None = None,
        is_system_user: bool = False,
    ) -> User:
        """Create a new user (admins only)."""
        return User._from_dict(
            users.add(caller(), name, first_name, last_name, email, password, groups, is_system_user)
        )

    @staticmethod
    def get(name_or_id: str | int) -> User:
        """Retrieve an existing user by username or numeric ID; ValueError if none."""
        return User._from_dict(users.get(caller(), name_or_id))

    @staticmethod
    def exists(name: str) -> bool:
        return users.exists(caller(), name)

    @staticmethod
    def ls() -> list[User]:
        return [User._from_dict(d) for d in users.ls(caller())]

    @staticmethod
    def remove(name: str) -> None:
        """Remove (delete) a user from the platform (admins only)."""
        users.remove(caller(), name)


__all__ = ["ROOT_USER", "USER_VAR", "User"]
