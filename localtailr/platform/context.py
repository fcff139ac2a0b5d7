"""Who is calling, in which home and environment."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass

from .. import environments, store
from ..errors import PermissionError
from ..home import Home

USER_VAR = "LOCALTAILR_USER"
ROOT_USER = "root"
ADMIN_GROUP_ID = 1

# (db file, user name) -> (data_version, identity generation, Caller); see _caller.
_callers: dict[tuple, tuple[int, int, Caller]] = {}
_generation = 0


@dataclass(frozen=True)
class Caller:
    """A resolved, enabled user: id, name, group ids and whether they are an admin."""

    user_id: int
    name: str
    group_ids: tuple[int, ...]
    is_admin: bool

    @property
    def principals(self) -> tuple[int, ...]:
        """The ACL principals that stand for this user: their id and -id of each group."""
        return (self.user_id, *(-g for g in self.group_ids))


@dataclass(frozen=True)
class Context:
    """The caller of an operation: the home, the connection, the user and the environment."""

    home: Home
    conn: sqlite3.Connection
    caller: Caller
    environment: str

    @property
    def user(self) -> str:
        return self.caller.name


def context(
    home: Home | None = None, user: str | int | None = None, environment: object = None
) -> Context:
    """The context for a call: ``LOCALTAILR_HOME``, ``LOCALTAILR_USER`` (default ``root``) and
    ``DATATAILR_JOB_ENVIRONMENT`` (default ``dev``), each read now unless given."""
    home = home or Home.current()
    conn = store.connection(home)
    if user is None:
        user = os.environ.get(USER_VAR) or ROOT_USER
    env = environments.normalise(environment)
    return Context(home, conn, _caller(conn, home, user), env)


def identity_changed() -> None:
    """Forget cached callers (called after any change to users or groups in this process)."""
    global _generation
    _generation += 1
    _callers.clear()


def _caller(conn: sqlite3.Connection, home: Home, user: str | int) -> Caller:
    # Resolving a caller costs a query; it is cached until another connection
    # commits anything (PRAGMA data_version) or this process changes identity.
    version = conn.execute("PRAGMA data_version").fetchone()[0]
    key = (str(home.root), id(conn), user)
    hit = _callers.get(key)
    if hit and hit[0] == version and hit[1] == _generation:
        return hit[2]
    column = "user_id" if isinstance(user, int) else "name"
    row = conn.execute(
        f"SELECT user_id, name, disabled FROM users WHERE {column} = ?", (user,)
    ).fetchone()
    if row is None:
        raise ValueError(f"user {user!r} does not exist (set {USER_VAR} to an existing user)")
    if row["disabled"]:
        raise PermissionError(row["name"], "the platform", "any", "the user is disabled")
    groups = tuple(
        r[0]
        for r in conn.execute(
            "SELECT group_id FROM memberships WHERE user_id = ? ORDER BY group_id",
            (row["user_id"],),
        )
    )
    caller = Caller(row["user_id"], row["name"], groups, ADMIN_GROUP_ID in groups)
    _callers[key] = (version, _generation, caller)
    return caller
