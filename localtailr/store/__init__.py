"""The database: connection settings, schema and migrations.

All state lives in one SQLite file in WAL mode. Writers take the write lock up
front (``BEGIN IMMEDIATE``) so that a read-then-write never fails half way with
"database is locked"; a busy lock is retried with backoff and never reaches the
caller.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..core.errors import DiskFullError
from ..core.home import Home

BUSY_TIMEOUT_MS = 5000

# Each migration takes the schema from version N-1 to N: an SQL script, or a function
# of the connection for what SQL alone cannot say. Never edit a released migration:
# append a new one. They run with foreign keys off (a table rebuilt must not cascade
# its drop), and the result is checked with ``PRAGMA foreign_key_check``.
MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
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
    # 3: job and run ids are never reused (see below)
    lambda conn: _never_reuse_ids(conn),
    # 4: data with history: blob and key versions, commits, what each run read, retention
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
        writer_run INTEGER,  -- the run that wrote that version (NULL: written outside a run)
        at REAL NOT NULL,
        PRIMARY KEY (run_id, resource, version)
    ) WITHOUT ROWID;
    CREATE INDEX run_reads_resource ON run_reads(resource, version);
    CREATE INDEX run_reads_writer ON run_reads(writer_run) WHERE writer_run IS NOT NULL;
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
    # 5: top-level runs counted by job and state, and keys, secrets and blobs counted, kept
    # by triggers (the overview reads these few rows instead of counting every row)
    """
    CREATE TABLE run_counts (
        job_id INTEGER NOT NULL,
        state TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (job_id, state)
    ) WITHOUT ROWID;
    INSERT INTO run_counts (job_id, state, n)
        SELECT job_id, state, count(*) FROM runs WHERE parent_run_id IS NULL GROUP BY job_id, state;
    CREATE TRIGGER run_counts_insert AFTER INSERT ON runs WHEN NEW.parent_run_id IS NULL
    BEGIN
        INSERT INTO run_counts (job_id, state, n) VALUES (NEW.job_id, NEW.state, 1)
            ON CONFLICT (job_id, state) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER run_counts_delete AFTER DELETE ON runs WHEN OLD.parent_run_id IS NULL
    BEGIN
        UPDATE run_counts SET n = n - 1 WHERE job_id = OLD.job_id AND state = OLD.state;
    END;
    CREATE TRIGGER run_counts_update AFTER UPDATE OF state, job_id, parent_run_id ON runs
    WHEN OLD.state IS NOT NEW.state OR OLD.job_id IS NOT NEW.job_id
        OR OLD.parent_run_id IS NOT NEW.parent_run_id
    BEGIN
        UPDATE run_counts SET n = n - 1
            WHERE OLD.parent_run_id IS NULL AND job_id = OLD.job_id AND state = OLD.state;
        INSERT INTO run_counts (job_id, state, n)
            SELECT NEW.job_id, NEW.state, 1 WHERE NEW.parent_run_id IS NULL
            ON CONFLICT (job_id, state) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER run_counts_job_delete AFTER DELETE ON jobs
    BEGIN
        DELETE FROM run_counts WHERE job_id = OLD.job_id;
    END;
    CREATE TABLE data_counts (
        name TEXT PRIMARY KEY,
        n INTEGER NOT NULL,
        bytes INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO data_counts (name, n, bytes)
        SELECT 'kv', count(*), 0 FROM kv UNION ALL
        SELECT 'secrets', count(*), 0 FROM secrets UNION ALL
        SELECT 'blobs', count(*), coalesce(sum(size), 0) FROM blobs;
    CREATE TRIGGER data_counts_kv_insert AFTER INSERT ON kv
    BEGIN UPDATE data_counts SET n = n + 1 WHERE name = 'kv'; END;
    CREATE TRIGGER data_counts_kv_delete AFTER DELETE ON kv
    BEGIN UPDATE data_counts SET n = n - 1 WHERE name = 'kv'; END;
    CREATE TRIGGER data_counts_secrets_insert AFTER INSERT ON secrets
    BEGIN UPDATE data_counts SET n = n + 1 WHERE name = 'secrets'; END;
    CREATE TRIGGER data_counts_secrets_delete AFTER DELETE ON secrets
    BEGIN UPDATE data_counts SET n = n - 1 WHERE name = 'secrets'; END;
    CREATE TRIGGER data_counts_blobs_insert AFTER INSERT ON blobs
    BEGIN UPDATE data_counts SET n = n + 1, bytes = bytes + NEW.size WHERE name = 'blobs'; END;
    CREATE TRIGGER data_counts_blobs_delete AFTER DELETE ON blobs
    BEGIN UPDATE data_counts SET n = n - 1, bytes = bytes - OLD.size WHERE name = 'blobs'; END;
    CREATE TRIGGER data_counts_blobs_update AFTER UPDATE OF size ON blobs
    BEGIN UPDATE data_counts SET bytes = bytes - OLD.size + NEW.size WHERE name = 'blobs'; END;
    """,
    # 6: the highest version a job ever had: a version number is never given out again
    # once its version is removed (``job rm --version``)
    """
    ALTER TABLE jobs ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0;
    UPDATE jobs SET last_version =
        (SELECT coalesce(max(version), 0) FROM job_versions WHERE job_id = jobs.job_id);
    """,
    # 7: a counter that every change to users, groups or memberships moves (by triggers,
    # whoever makes it): a caller resolved at one value of it is still current while it
    # holds, whatever else other connections commit (platform/context.py)
    """
    CREATE TABLE identity_generation (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        n INTEGER NOT NULL
    );
    INSERT INTO identity_generation (id, n) VALUES (1, 0);
    """ + "".join(
        f"CREATE TRIGGER identity_generation_{table}_{event} AFTER {event.upper()} ON {table}"
        " BEGIN UPDATE identity_generation SET n = n + 1 WHERE id = 1; END;\n"
        for table in ("users", "groups", "memberships") for event in ("insert", "update", "delete")
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)


def _never_reuse_ids(conn: sqlite3.Connection) -> None:
    """Migration 3: ``jobs`` and ``runs`` get AUTOINCREMENT keys, keeping their rows.

    Without it SQLite hands the largest removed id out again: a job deployed again after
    ``job rm`` got the old job's id (and whatever was cached under it) and its runs the
    old runs' ids and folders.
    """
    for table, key in (("jobs", "job_id"), ("runs", "run_id")):
        _autoincrement(conn, table, key)
    # A run folder left behind by a removed run must not be taken by a new run either.
    runs = os.path.join(os.path.dirname(conn.execute("PRAGMA database_list").fetchone()[2]), "runs")
    try:
        highest = max((int(n) for n in os.listdir(runs) if n.isdigit()), default=0)
    except OSError:
        highest = 0
    _raise_sequence(conn, "runs", highest)


def _autoincrement(conn: sqlite3.Connection, table: str, key: str) -> None:
    """Rebuild ``table`` with ``key INTEGER PRIMARY KEY AUTOINCREMENT`` (SQLite's recipe:
    a new table, the rows copied, the old one dropped, the new one renamed; indexes made
    again). Columns added by later migrations are kept: the copy names them all."""
    sql = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()[0]
    primary = re.compile(rf"\b{key}\s+INTEGER\s+PRIMARY\s+KEY\b(?!\s+AUTOINCREMENT)", re.I)
    if not primary.search(sql):
        return
    new_sql = primary.sub(f"{key} INTEGER PRIMARY KEY AUTOINCREMENT", sql, count=1)
    new_sql = re.sub(rf"^CREATE\s+TABLE\s+\"?{table}\"?", f"CREATE TABLE {table}_new", new_sql,
                     count=1, flags=re.I)
    indexes = [r[0] for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        (table,))]
    columns = ", ".join(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))
    conn.execute(new_sql)
    conn.execute(f"INSERT INTO {table}_new ({columns}) SELECT {columns} FROM {table}")
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"ALTER TABLE {table}_new RENAME TO {table}")
    for index in indexes:
        conn.execute(index)


def _raise_sequence(conn: sqlite3.Connection, table: str, at_least: int) -> None:
    """Make the next AUTOINCREMENT id of ``table`` greater than ``at_least``."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    if row is None:
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, at_least))
    elif row[0] < at_least:
        conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (at_least, table))

_local = threading.local()


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")


class Connection(sqlite3.Connection):
    """A connection that carries the memos kept for it (``memo``): they go when it goes,
    so no cache elsewhere keeps a closed or dropped connection alive."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.memo: dict = {}


def connect(home: Home) -> sqlite3.Connection:
    """A new connection to the home's database, migrated to the current schema."""
    home.ensure()
    if not home.db_path.exists():
        # Create it private (0600): SQLite gives the -wal and -shm files the same mode.
        try:
            os.close(os.open(home.db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    conn = sqlite3.connect(home.db_path, isolation_level=None, check_same_thread=False,
                           factory=Connection)
    conn.row_factory = sqlite3.Row
    try:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            write(conn, "PRAGMA journal_mode = WAL")
        _configure(conn)
        migrate(conn)
    except sqlite3.Error as exc:
        conn.close()
        if is_full(exc, str(home.root)):
            # a new connection needs room for the WAL index: a full disk stops even reads
            raise disk_full(str(home.root), exc) from exc
        raise
    return conn


def connect_existing(home: Home) -> sqlite3.Connection:
    """A new connection to a database that is there and at the current schema already (a
    workflow task's process, started by the daemon that made it): no folder check, no
    migration; a database that is missing or at another schema gets ``connect``'s path."""
    if not home.db_path.exists():  # made (private, and migrated) the usual way
        return connect(home)
    conn = sqlite3.connect(home.db_path, isolation_level=None, check_same_thread=False,
                           factory=Connection)
    conn.row_factory = sqlite3.Row
    try:
        _configure(conn)
        current = schema_version(conn) == SCHEMA_VERSION
    except sqlite3.Error:
        current = False
    if current:
        return conn
    conn.close()
    return connect(home)


# How often (seconds) a kept connection checks that its database file still exists,
# so that a home removed and made again (``localtailr reset``) is reopened. Checking
# at every call would cost a stat() a call, as much as the query itself.
RECHECK_SECONDS = 1.0


# Forks this process has been through (moved in the child): a forked child's copy of a
# thread's connections is not its own. (Counted rather than comparing os.getpid() at each
# call, a system call that costs a tenth of a KV get.)
_forks = 0


def _forked() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


class _ThreadConnections(dict):
    """One thread's connections (home root -> [conn, checked at, db path]), closed when
    the thread ends: a server that starts a thread a request must not leave a database
    connection (a descriptor and its page cache) behind each. A Python connection is
    kept alive by a reference cycle (its statement cache), so without this it would
    wait for the cycle collector."""

    def __init__(self) -> None:
        super().__init__()
        self.pid, self.forks = os.getpid(), _forks
        # (root, entry) of the last lookup: the same root object again (a program's calls
        # share one Home) skips the dict's comparison of two equal paths, done in Python
        self.last: tuple = (None, None)

    def __del__(self):
        if self.pid != os.getpid():  # a forked child's copy: the parent's to close
            return
        for entry in self.values():
            try:
                entry[0].close()
            except Exception:  # noqa: BLE001, S110 - closing at thread end is best effort
                pass


def connection(home: Home) -> sqlite3.Connection:
    """The connection this thread of this process keeps open for ``home``; it is closed
    when the thread ends.

    Opening costs a file open and a schema check; keeping one a thread makes
    every later call cheap. A forked child gets its own.
    """
    cache = getattr(_local, "conns", None)
    if cache is None or cache.forks != _forks:
        cache = _local.conns = _ThreadConnections()
    root = home.root
    last = cache.last
    entry = last[1] if last[0] is root else cache.get(root)
    now = time.monotonic()
    if entry is not None:
        if now - entry[1] < RECHECK_SECONDS:
            cache.last = (root, entry)
            return entry[0]
        if os.path.exists(entry[2]):
            entry[1] = now
            cache.last = (root, entry)
            return entry[0]
        entry[0].close()
    conn = connect(home)
    entry = cache[root] = [conn, now, str(home.db_path)]
    cache.last = (root, entry)
    return conn


def forget(home: Home) -> None:
    """Close this thread's connection to ``home`` (before the home is removed)."""
    cache = getattr(_local, "conns", None)
    if cache is None:
        return
    cache.last = (None, None)
    entry = cache.pop(home.root, None)
    if entry is not None:
        entry[0].close()


def is_home(home: Home) -> bool:
    """Whether ``home`` holds a localtailr database (read only: nothing is created or migrated)."""
    if not home.db_path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"{home.db_path.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            return schema_version(conn) >= 1 and {"users", "groups", "kv"} <= tables
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the database up to ``target``, in one transaction."""
    if schema_version(conn) >= target:
        return schema_version(conn)
    conn.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: set before
    try:
        with transaction(conn):
            current = schema_version(conn)
            for version in range(current + 1, target + 1):
                step = MIGRATIONS[version - 1]
                if callable(step):
                    step(conn)
                else:
                    for statement in _statements(step):
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version}")
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise sqlite3.IntegrityError(
                    f"migration to schema {target} would leave rows pointing at nothing"
                    f" ({[tuple(r) for r in broken[:5]]}); nothing was changed")
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
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


POLL = 0.003  # seconds between looks at PRAGMA data_version while waiting for a commit


def wait_for_commit(conn: sqlite3.Connection, seen: int | None, until: float | None) -> int:
    """Wait until another connection commits to the database (``PRAGMA data_version``
    differs from ``seen``) or ``time.monotonic()`` reaches ``until``; the version now.

    A look costs microseconds, so a waiter sees a change within a few milliseconds
    without re-reading its rows between commits."""
    while True:
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != seen:
            return version
        now = time.monotonic()
        if until is not None and now >= until:
            return version
        time.sleep(POLL if until is None else max(0.0, min(POLL, until - now)))


def _jitter() -> float:
    """A factor in [0.5, 1.5) that spreads retries apart (random imported only on a retry:
    it costs every command-line call a millisecond)."""
    import random  # only on a retry: it costs every command-line call a millisecond

    return random.uniform(0.5, 1.5)


def is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )


# Below this much free space, a disk I/O error is taken for a full disk: SQLite reports
# "disk I/O error" when it cannot grow the WAL index of a new connection, and Python
# does not show the errno (ENOSPC) behind it.
LOW_SPACE = 1 << 20


def is_full(exc: BaseException, folder: str) -> bool:
    """Whether ``exc`` means the disk holding ``folder`` is full: SQLITE_FULL (no room on
    the disk, or under ``max_page_count``), or an I/O error with next to no room left."""
    if not isinstance(exc, sqlite3.Error):
        return False
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return True
    if code != sqlite3.SQLITE_IOERR:
        return False
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < LOW_SPACE


def folder_of(conn: sqlite3.Connection) -> str:
    try:
        return os.path.dirname(conn.execute("PRAGMA database_list").fetchone()[2])
    except sqlite3.Error:
        return "the home"


def disk_full(folder: str, exc: BaseException) -> DiskFullError:
    """The one clear error a user sees on a full disk: what happened, and what to do."""
    detail = str(exc) if "full" in str(exc) else f"{exc}: the disk is full"
    return DiskFullError(
        f"the database in {folder} cannot be written: {detail}; nothing was changed."
        f" Free some space on that disk (see `df -h {folder}`), then try again"
    )


def _check_full(conn: sqlite3.Connection, exc: BaseException) -> None:
    """Raise DiskFullError (from ``exc``) if ``exc`` means the disk is full."""
    if isinstance(exc, sqlite3.Error):
        folder = folder_of(conn)
        if is_full(exc, folder):
            raise disk_full(folder, exc) from exc


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite rolls some failed transactions back itself (a full disk does): a second
    # ROLLBACK would fail with "no transaction is active" and hide the real error.
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def insert(conn: sqlite3.Connection, sql: str, args: tuple = ()) -> int:
    """Run the INSERT ``sql``; the rowid of the row it made."""
    rowid = conn.execute(sql, args).lastrowid
    assert rowid is not None, "sqlite3 sets lastrowid at every execute"  # for the type checker
    return rowid


def write(conn: sqlite3.Connection, sql: str, args: tuple = (), attempts: int = 50) -> sqlite3.Cursor:
    """Run one statement on its own (autocommit), retrying with backoff while the database
    answers "locked" (beyond busy_timeout); DiskFullError if the disk is full."""
    for attempt in range(attempts):
        try:
            return conn.execute(sql, args)
        except sqlite3.OperationalError as exc:
            _check_full(conn, exc)
            if not is_locked(exc) or attempt == attempts - 1:
                raise
            time.sleep(min(0.2, 0.002 * 2**attempt) * _jitter())
    raise AssertionError("unreachable")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction (``BEGIN IMMEDIATE``); commits on success, rolls back on error.

    Nested use joins the outer transaction. A full disk raises DiskFullError, with the
    transaction rolled back and the connection usable again once there is room.
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
            _check_full(conn, exc)
            if not is_locked(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay * _jitter())
            delay = min(delay * 2, 0.1)
    try:
        yield conn
    except BaseException as exc:
        _rollback(conn)
        _check_full(conn, exc)
        raise
    else:
        while True:
            try:
                conn.execute("COMMIT")
                return
            except sqlite3.OperationalError as exc:
                if not is_locked(exc) or time.monotonic() > deadline:
                    _rollback(conn)
                    _check_full(conn, exc)
                    raise
                time.sleep(delay)
