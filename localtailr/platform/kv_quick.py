"""``kv get`` for a one-shot process (``localtailr kv get``, ``dt kv get`` with no daemon):
the answer ``kv.get`` gives when it succeeds, or None when this cannot be sure of it (the
caller then does it the full way, which also reports every error its way).

A command line that imports the store, pathlib and sqlite3 spends ~15 ms on imports for
a query of a tenth of a millisecond; this imports the home's folder rules and the SQLite
module alone, and asks one statement: the caller (exists, enabled, an admin or holding
READ, as ``context``/``acl`` decide it), the key's value and the schema's version.
"""

import _sqlite3  # the C module: sqlite3 adds datetime and its adapters (~1 ms), unused here
import os

from ..core import environments, home_folder, settings

# store.SCHEMA_VERSION (tests/platform/test_kv_quick.py keeps them equal): a database of
# another version goes the full way, which migrates it
SCHEMA_VERSION = 7
ADMIN_GROUP_ID = 1  # context.ADMIN_GROUP_ID (kept equal by the same test)
BUSY_TIMEOUT_S = 5.0  # store.BUSY_TIMEOUT_MS

_SQL = (
    "SELECT (SELECT journal_mode FROM pragma_journal_mode),"
    " (SELECT user_version FROM pragma_user_version), u.disabled,"
    f" EXISTS (SELECT 1 FROM memberships WHERE user_id = u.user_id AND group_id = {ADMIN_GROUP_ID}),"
    " EXISTS (SELECT 1 FROM acl WHERE resource = ?1 AND permission = 'read' AND"
    "  (principal = u.user_id OR principal IN"
    "   (SELECT -group_id FROM memberships WHERE user_id = u.user_id))),"
    " (SELECT value FROM kv WHERE environment = ?2 AND key = ?3)"
    " FROM users AS u WHERE u.name = ?4"
)


def _uri(path: str) -> str:
    # mode=rw: a home without a database is not created here (the full way makes it)
    quoted = path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    return f"file:{quoted}?mode=rw"


def get(key: str, home: str | None = None, user: str | None = None,
        environment: str | None = None) -> str | None:
    """The value of plain key ``key`` as ``kv.get`` reads it for ``user`` (default
    ``LOCALTAILR_USER``, else root) in ``environment`` (default ``DATATAILR_JOB_ENVIRONMENT``,
    else dev) of ``home`` (a path; default ``LOCALTAILR_HOME``); None if it cannot tell."""
    if not (isinstance(key, str) and 0 < len(key) <= 512 and key.isprintable()):
        return None  # a key names.key might refuse: the full way says why
    if os.environ.get(settings.RUN_ID.name):
        return None  # inside a job the read is recorded (provenance): the full way
    try:
        environment = environments.normalise(environment)
    except ValueError:
        return None
    user = user or os.environ.get(settings.USER.name) or "root"
    root = home_folder.absolute(home) if home else home_folder.default_root()
    try:
        conn = _sqlite3.connect(_uri(os.path.join(root, home_folder.DB_NAME)), uri=True,
                                timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except _sqlite3.Error:
        return None
    try:
        home_folder.ensure(root)  # as opening a home the full way does
        row = conn.execute(_SQL, (f"kv/{environment}/{key}", environment, key, user)).fetchone()
    except (_sqlite3.Error, OSError):
        return None
    finally:
        conn.close()
    if row is None:
        return None  # no such user
    mode, version, disabled, admin, readable, value = row
    if mode != "wal" or version != SCHEMA_VERSION or disabled or value is None:
        return None
    return value if admin or readable else None
