"""The database: connection settings, schema and migrations.

All state lives in one SQLite file in WAL mode. Writers take the write lock up
front (``BEGIN IMMEDIATE``) so that a read-then-write never fails half way with
"database is locked"; a busy lock is retried with backoff and never reaches the
caller.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .home import Home

BUSY_TIMEOUT_MS = 5000

# Each migration takes the schema from version N-1 to N. Never edit a released
# migration: append a new one.
MIGRATIONS: list[str] = [
    # 1: identity and data
    """
    CREATE TABLE users (
        user_id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        first_name TEXT NOT NULL DEFAULT '',
        last_name TEXT NOT NULL DEFAULT '',
        email TEXT,
        password_hash TEXT,
        is_system_user INTEGER NOT NULL DEFAULT 0,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE TABLE groups (
        group_id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL
    );
    CREATE TABLE memberships (
        group_id INTEGER NOT NULL REFERENCES groups(group_id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        PRIMARY KEY (group_id, user_id)
    );
    CREATE TABLE acl (
        resource TEXT NOT NULL,
        permission TEXT NOT NULL,
        principal INTEGER NOT NULL,  -- user_id, or -group_id for a group
        PRIMARY KEY (resource, permission, principal)
    ) WITHOUT ROWID;
    CREATE TABLE kv (
        environment TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL,
        updated_by INTEGER NOT NULL,
        PRIMARY KEY (environment, key)
    ) WITHOUT ROWID;
    CREATE TABLE secrets (
        environment TEXT NOT NULL,
        key TEXT NOT NULL,
        token BLOB NOT NULL,
        updated_at REAL NOT NULL,
        updated_by INTEGER NOT NULL,
        PRIMARY KEY (environment, key)
    ) WITHOUT ROWID;
    CREATE TABLE blobs (
        name TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        updated_at REAL NOT NULL,
        updated_by INTEGER NOT NULL
    );
    INSERT INTO users (user_id, name, first_name, last_name, is_system_user, created_at)
        VALUES (0, 'root', 'Super User', '', 1, 0);
    INSERT INTO groups (group_id, name, created_at) VALUES (1, 'admin', 0);
    INSERT INTO memberships (group_id, user_id) VALUES (1, 0);
    """,
    # 2: jobs, their versions, runs and what happens to them
    """
    CREATE TABLE jobs (
        job_id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        environment TEXT NOT NULL,
        type TEXT NOT NULL,
        current_version INTEGER NOT NULL DEFAULT 1,
        desired_state TEXT,
        owner_id INTEGER NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (name, environment)
    );
    CREATE TABLE job_versions (
        job_id INTEGER NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        definition TEXT NOT NULL,
        created_at REAL NOT NULL,
        created_by INTEGER NOT NULL,
        PRIMARY KEY (job_id, version)
    );
    CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        parent_run_id INTEGER REFERENCES runs(run_id) ON DELETE CASCADE,
        task_name TEXT,
        state TEXT NOT NULL,
        reason TEXT,
        run_as INTEGER NOT NULL,
        environment TEXT NOT NULL,
        trigger TEXT NOT NULL DEFAULT 'manual',
        params TEXT NOT NULL DEFAULT '{}',
        scheduled_for REAL,
        image_key TEXT,
        pid INTEGER,
        pid_create_time REAL,
        port INTEGER,
        url TEXT,
        exit_code INTEGER,
        restarts INTEGER NOT NULL DEFAULT 0,
        peak_rss INTEGER,
        peak_cpu REAL,
        attempt INTEGER NOT NULL DEFAULT 1,
        created_at REAL NOT NULL,
        started_at REAL,
        ended_at REAL
    );
    CREATE INDEX runs_job ON runs(job_id, run_id);
    CREATE INDEX runs_state ON runs(state);
    CREATE INDEX runs_parent ON runs(parent_run_id);
    CREATE TABLE run_events (
        run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        at REAL NOT NULL,
        state TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX run_events_run ON run_events(run_id, at);
    CREATE TABLE run_results (
        run_id INTEGER PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
        data BLOB NOT NULL,
        repr TEXT
    );
    CREATE TABLE run_metrics (
        run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        at REAL NOT NULL,
        cpu REAL NOT NULL,
        rss INTEGER NOT NULL
    );
    CREATE INDEX run_metrics_run ON run_metrics(run_id, at);
    CREATE TABLE schedules (
        job_id INTEGER PRIMARY KEY REFERENCES jobs(job_id) ON DELETE CASCADE,
        cron TEXT,
        timezone TEXT,
        run_after_job_id INTEGER REFERENCES jobs(job_id) ON DELETE SET NULL,
        run_after_condition TEXT,
        next_fire REAL,
        last_fire REAL
    );
    CREATE TABLE images (
        key TEXT PRIMARY KEY,
        python TEXT NOT NULL,
        requirements TEXT NOT NULL,
        state TEXT NOT NULL,
        size INTEGER,
        created_at REAL NOT NULL,
        last_used REAL
    );
    CREATE TABLE tags (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 3: data with history: blob and key versions, commits, what each run read, retention
    """
    ALTER TABLE blobs ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE kv ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE secrets ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE commits (
        commit_id INTEGER PRIMARY KEY,
        message TEXT NOT NULL,
        author INTEGER NOT NULL,
        run_id INTEGER,
        created_at REAL NOT NULL
    );
    CREATE TABLE blob_versions (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        sha256 TEXT,  -- NULL: the blob was deleted by this version
        size INTEGER,
        created_at REAL NOT NULL,
        created_by INTEGER NOT NULL,
        run_id INTEGER,
        commit_id INTEGER,
        PRIMARY KEY (name, version)
    ) WITHOUT ROWID;
    CREATE INDEX blob_versions_sha ON blob_versions(sha256);
    CREATE INDEX blob_versions_run ON blob_versions(run_id) WHERE run_id IS NOT NULL;
    CREATE INDEX blob_versions_commit ON blob_versions(commit_id) WHERE commit_id IS NOT NULL;
    CREATE TABLE blob_objects (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        stamp TEXT  -- size:mtime:ctime:inode when last verified; NULL: not yet
    ) WITHOUT ROWID;
    CREATE TABLE kv_versions (
        kind TEXT NOT NULL,  -- 'key' or 'secret'
        environment TEXT NOT NULL,
        key TEXT NOT NULL,
        version INTEGER NOT NULL,
        value TEXT,  -- a key's value; always NULL for a secret (only who and when are kept)
        deleted INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        created_by INTEGER NOT NULL,
        run_id INTEGER,
        commit_id INTEGER,
        PRIMARY KEY (kind, environment, key, version)
    ) WITHOUT ROWID;
    CREATE INDEX kv_versions_run ON kv_versions(run_id) WHERE run_id IS NOT NULL;
    CREATE INDEX kv_versions_commit ON kv_versions(commit_id) WHERE commit_id IS NOT NULL;
    CREATE TABLE run_reads (
        run_id INTEGER NOT NULL,
        resource TEXT NOT NULL,  -- blob/NAME, kv/ENV/KEY or secret/ENV/KEY
        version INTEGER NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (run_id, resource, version)
    ) WITHOUT ROWID;
    CREATE INDEX run_reads_resource ON run_reads(resource, version);
    CREATE TABLE retention (
        prefix TEXT PRIMARY KEY,
        keep_versions INTEGER,
        keep_days REAL
    );
    CREATE TABLE blob_sources (
        stamp TEXT PRIMARY KEY,  -- a local file put: device:inode:size:mtime:ctime
        sha256 TEXT NOT NULL,
        recorded_at REAL NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO blob_versions (name, version, sha256, size, created_at, created_by)
        SELECT name, 1, sha256, size, updated_at, updated_by FROM blobs;
    INSERT OR IGNORE INTO blob_objects (sha256, size) SELECT sha256, size FROM blobs;
    INSERT INTO kv_versions (kind, environment, key, version, value, created_at, created_by)
        SELECT 'key', environment, key, 1, value, updated_at, updated_by FROM kv;
    INSERT INTO kv_versions (kind, environment, key, version, value, created_at, created_by)
        SELECT 'secret', environment, key, 1, NULL, updated_at, updated_by FROM secrets;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

_local = threading.local()


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")


def connect(home: Home) -> sqlite3.Connection:
    """A new connection to the home's database, migrated to the current schema."""
    home.ensure()
    if not home.db_path.exists():
        # Create it private (0600): SQLite gives the -wal and -shm files the same mode.
        try:
            os.close(os.open(home.db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    conn = sqlite3.connect(home.db_path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if mode != "wal":
        write(conn, "PRAGMA journal_mode = WAL")
    _configure(conn)
    migrate(conn)
    return conn


# How often (seconds) a kept connection checks that its database file still exists,
# so that a home removed and made again (``localtailr reset``) is reopened. Checking
# at every call would cost a stat() a call, as much as the query itself.
RECHECK_SECONDS = 1.0


def connection(home: Home) -> sqlite3.Connection:
    """The connection this thread of this process keeps open for ``home``.

    Opening costs a file open and a schema check; keeping one a thread makes
    every later call cheap. A forked child gets its own.
    """
    cache = getattr(_local, "conns", None)
    pid = os.getpid()
    if cache is None or _local.pid != pid:
        cache = _local.conns = {}
        _local.pid = pid
    entry = cache.get(home.root)
    now = time.monotonic()
    if entry is not None:
        if now - entry[1] < RECHECK_SECONDS:
            return entry[0]
        if os.path.exists(entry[2]):
            entry[1] = now
            return entry[0]
        entry[0].close()
    conn = connect(home)
    cache[home.root] = [conn, now, str(home.db_path)]
    return conn


def forget(home: Home) -> None:
    """Close this thread's connection to ``home`` (before the home is removed)."""
    cache = getattr(_local, "conns", None) or {}
    entry = cache.pop(home.root, None)
    if entry is not None:
        entry[0].close()


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the database up to ``target``, one migration a transaction."""
    if schema_version(conn) >= target:
        return schema_version(conn)
    with transaction(conn):
        current = schema_version(conn)
        for version in range(current + 1, target + 1):
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
    return schema_version(conn)


def _statements(script: str) -> list[str]:
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    return out


def is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )


def write(conn: sqlite3.Connection, sql: str, args: tuple = (), attempts: int = 50) -> sqlite3.Cursor:
    """Run one statement on its own (autocommit), retrying with backoff while the database
    answers "locked" (beyond busy_timeout)."""
    for attempt in range(attempts):
        try:
            return conn.execute(sql, args)
        except sqlite3.OperationalError as exc:
            if not is_locked(exc) or attempt == attempts - 1:
                raise
            time.sleep(min(0.2, 0.002 * 2**attempt) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction (``BEGIN IMMEDIATE``); commits on success, rolls back on error.

    Nested use joins the outer transaction.
    """
    if conn.in_transaction:
        yield conn
        return
    delay = 0.002
    deadline = time.monotonic() + 60
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:
            if not is_locked(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.1)
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        while True:
            try:
                conn.execute("COMMIT")
                return
            except sqlite3.OperationalError as exc:
                if not is_locked(exc) or time.monotonic() > deadline:
                    conn.execute("ROLLBACK")
                    raise
                time.sleep(delay)


def database(conn: sqlite3.Connection):
    """The sqlite-utils view of a connection (for listings and introspection, not hot paths).

    Imported here, not at the top: sqlite-utils costs ~250 ms to import, which
    every job start would otherwise pay.
    """
    import sqlite_utils

    return sqlite_utils.Database(conn)


def db_file(home: Home) -> Path:
    return home.db_path
