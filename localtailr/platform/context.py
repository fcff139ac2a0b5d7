"""Who is calling, in which home and environment."""

from __future__ import annotations

import os
import sqlite3

from .. import store
from ..core import environments, settings
from ..core.errors import PermissionError
from ..core.home import Home

USER_VAR = settings.USER.name
HOME_VAR = settings.HOME.name
ROOT_USER = "root"
ADMIN_GROUP_ID = 1

# Resolved callers are kept on their connection (``conn.memo["callers"]``: user ->
# (stored generation, process generation, Caller)), so they go with it; see _caller.
# The stored generation (``identity_generation.n``) moves, by triggers, at every change
# to users, groups or memberships made by anyone; the process one at identity_changed().
_generation = 0
MAX_CALLERS = 256  # users remembered a connection


def _callers(conn: sqlite3.Connection) -> dict:
    memo = getattr(conn, "memo", None)
    if memo is None:  # a plain sqlite3 connection (not the store's): nothing is kept
        return {}
    callers = memo.get("callers")
    if callers is None:
        callers = memo["callers"] = {}
    return callers


class Caller:
    """A resolved, enabled user: id, name, group ids and whether they are an admin.
    (A plain class: a dataclass would import inspect at every command-line call.)"""

    __slots__ = ("user_id", "name", "group_ids", "is_admin", "principals")

    def __init__(self, user_id: int, name: str, group_ids: tuple[int, ...], is_admin: bool):
        self.user_id, self.name, self.group_ids, self.is_admin = user_id, name, group_ids, is_admin
        # The ACL principals that stand for this user: their id and -id of each group
        # (kept: every ACL check of a non-admin binds them).
        self.principals: tuple[int, ...] = (user_id, *(-g for g in group_ids))

    def __eq__(self, other: object) -> bool:
        if type(other) is not Caller:
            return NotImplemented
        return (self.user_id, self.name, self.group_ids, self.is_admin) == (
            other.user_id, other.name, other.group_ids, other.is_admin)

    def __hash__(self) -> int:
        return hash((self.user_id, self.name, self.group_ids, self.is_admin))

    def __repr__(self) -> str:
        return (f"Caller(user_id={self.user_id!r}, name={self.name!r},"
                f" group_ids={self.group_ids!r}, is_admin={self.is_admin!r})")


class Context:
    """The caller of an operation: the home, the connection, the user and the environment.

    ``caller`` is resolved when the context is made, or, for a context made with
    ``lazy=True``, at first use; ``caller_at(generation)`` resolves it from the
    identity generation the operation read in its own query (``IDENTITY_SQL``), saving
    a statement.
    """

    __slots__ = ("home", "conn", "environment", "_caller", "_user")

    def __init__(
        self,
        home: Home,
        conn: sqlite3.Connection,
        caller: Caller | None,
        environment: str,
        user: str | int | None = None,
    ):
        self.home, self.conn, self.environment = home, conn, environment
        if user is None:
            if caller is None:
                raise ValueError("a context needs its caller or the user to check")
            user = caller.name
        self._caller, self._user = caller, user

    @property
    def caller(self) -> Caller:
        if self._caller is None:
            self._caller = _caller(self.conn, self.home, self._user)
        return self._caller

    def caller_at(self, generation: int) -> Caller:
        """The caller, checked against the identity ``generation`` read by the operation's
        own query (in the same transaction as what it checks the caller against)."""
        caller = self._caller
        if caller is None:
            hit = _callers(self.conn).get(self._user)  # _caller()'s fast path, inlined
            if hit and hit[0] == generation and hit[1] == _generation:
                caller = hit[2]
            else:
                caller = _caller(self.conn, self.home, self._user, generation)
            self._caller = caller
        return caller

    def cached_at(self) -> tuple[Caller, int] | None:
        """The caller as last resolved on this connection, perhaps stale, with the identity
        generation it was resolved at, without a query: a guess that an operation confirms
        by reading the generation in its own statement (``IDENTITY_SQL``)."""
        hit = _callers(self.conn).get(self._user)
        if hit and hit[1] == _generation and (self._caller is None or self._caller is hit[2]):
            return hit[2], hit[0]
        return None

    @property
    def user(self) -> str:
        return self.caller.name

    def __repr__(self) -> str:
        who = self._caller.name if self._caller else self._user
        return f"Context(home={self.home.root}, user={who}, environment={self.environment})"


# (LOCALTAILR_HOME, LOCALTAILR_USER, DATATAILR_JOB_ENVIRONMENT as set now, environment
# argument) -> (Home, user, environment name). The variables are read at every call,
# but resolving them (paths, validation) costs more than a KV get's query, so it is
# done once per set of values. os.environ's own dict is read directly: going through
# os.environ.get() three times a call would cost a fifth of a get.
_resolved: dict[tuple, tuple[Home, str, str]] = {}
_environ_data = getattr(os.environ, "_data", None)
_KEY_VARS = [HOME_VAR, USER_VAR, environments.ENV_VAR]
if _environ_data is not None:
    _KEY_VARS = [os.environ.encodekey(v) for v in _KEY_VARS]


def _current(environment: object) -> tuple[Home, str, str]:
    data = _environ_data if _environ_data is not None else os.environ
    key = (data.get(_KEY_VARS[0]), data.get(_KEY_VARS[1]), data.get(_KEY_VARS[2]), environment)
    try:
        hit = _resolved.get(key)
    except TypeError:  # an unhashable environment: let normalise() explain
        return Home.current(), os.environ.get(USER_VAR) or ROOT_USER, environments.normalise(environment)
    if hit is None:
        hit = (Home.current(), os.environ.get(USER_VAR) or ROOT_USER, environments.normalise(environment))
        if len(_resolved) > 256:
            _resolved.clear()
        _resolved[key] = hit
    return hit


def context(
    home: Home | None = None,
    user: str | int | None = None,
    environment: object = None,
    lazy: bool = False,
) -> Context:
    """The context for a call: ``LOCALTAILR_HOME``, ``LOCALTAILR_USER`` (default ``root``) and
    ``DATATAILR_JOB_ENVIRONMENT`` (default ``dev``), each read now unless given.

    With ``lazy=True`` the user is checked (exists, enabled) when the operation first
    needs the caller, not now: for operations that always do.
    """
    current_home, current_user, env = _current(environment)
    home = home or current_home
    conn = store.connection(home)
    if user is None:
        user = current_user
    if lazy:
        return Context(home, conn, None, env, user)
    return Context(home, conn, _caller(conn, home, user), env, user)


def identity_changed() -> None:
    """Forget cached callers (called after any change to users or groups in this process)."""
    global _generation
    _generation += 1


# The identity generation, for an operation's own query to read beside what it reads
# (one row: ``FROM identity_generation AS g LEFT JOIN ...`` always gives a row).
IDENTITY_SQL = "SELECT n FROM identity_generation"


def _caller(
    conn: sqlite3.Connection, home: Home, user: str | int, generation: int | None = None
) -> Caller:
    # Resolving a caller costs two queries; it is cached until anyone changes users,
    # groups or memberships (identity_generation) or this process changes identity.
    if generation is None:
        generation = conn.execute(IDENTITY_SQL).fetchone()[0]
    callers = _callers(conn)
    hit = callers.get(user)
    if hit and hit[0] == generation and hit[1] == _generation:
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
    if len(callers) >= MAX_CALLERS:
        callers.clear()
    callers[user] = (generation, _generation, caller)
    return caller
