"""A job version's definition: the one reader every layer uses.

A version never changes once written, so its parsed definition is cached. The cache key
holds the database's file and the version's creation time beside its ids: a home made
again (``localtailr reset``) numbers its jobs from 1 again, and must not find the old
home's definitions.
"""

from __future__ import annotations

import json
import sqlite3

CACHE_SIZE = 1000  # definitions kept; the cache is emptied when it grows past this

_definitions: dict[tuple[str, int, int, float], dict] = {}


def definition(conn: sqlite3.Connection, job_id: int, version: int) -> dict | None:
    """The parsed definition of version ``version`` of job ``job_id``; None if there is no
    such version. The dict is shared (cached): the caller must not change it."""
    row = conn.execute("SELECT created_at FROM job_versions WHERE job_id = ? AND version = ?",
                       (job_id, version)).fetchone()
    if row is None:
        return None
    key = (str(conn.execute("PRAGMA database_list").fetchone()[2]), job_id, version, row[0])
    found = _definitions.get(key)
    if found is None:
        row = conn.execute("SELECT definition FROM job_versions WHERE job_id = ? AND version = ?",
                           (job_id, version)).fetchone()
        if row is None:
            return None
        if len(_definitions) > CACHE_SIZE:
            _definitions.clear()
        found = _definitions[key] = json.loads(row[0])
    return found


def definition_for_run(conn: sqlite3.Connection, run_id: int) -> dict | None:
    """The definition of the version run ``run_id`` was created from (shared, as
    ``definition``'s); None if there is no such run or version."""
    row = conn.execute("SELECT job_id, version FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        return None
    return definition(conn, row[0], row[1])
