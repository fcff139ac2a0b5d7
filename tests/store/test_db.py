"""Issue 2, the store: connection settings, migrations, and surviving concurrent
writers and writers killed with SIGKILL (real processes, real SQLite files)."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from localtailr import KV, Blob, Secrets, store
from localtailr.core.home import Home

# --- connection settings ----------------------------------------------------------------


def test_connection_settings(tmp_path):
    home = Home(tmp_path / "h")
    conn = store.connect(home)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.schema_version(conn) == store.SCHEMA_VERSION == len(store.MIGRATIONS)
    assert (home.root.stat().st_mode & 0o777) == 0o700
    for sub in (home.blobs, home.venvs, home.runs):
        assert sub.is_dir()


def test_connect_existing_skips_the_folder_and_schema_work(tmp_path):
    """A workflow task's connection (``connect_existing``): a home made and migrated by the
    daemon is opened as it is, with the same settings; a folder removed meanwhile is not
    made again (``connect`` would make it)."""
    home = Home(tmp_path / "h")
    store.connect(home).close()
    home.blobs.rmdir()
    conn = store.connect_existing(home)
    assert not home.blobs.exists()
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.schema_version(conn) == store.SCHEMA_VERSION
    with pytest.raises(sqlite3.IntegrityError):  # a real, configured connection
        conn.execute("INSERT INTO memberships (group_id, user_id) VALUES (999, 0)")


@pytest.mark.parametrize("database", ["missing", "empty"])
def test_connect_existing_makes_and_migrates_what_is_not_there(tmp_path, database):
    home = Home(tmp_path / "h").ensure()
    if database == "empty":  # there, at schema 0 (an interrupted first start)
        sqlite3.connect(home.db_path).close()
    conn = store.connect_existing(home)
    assert store.schema_version(conn) == store.SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert home.db_path.stat().st_mode & 0o077 == 0 or database == "empty"


def test_foreign_keys_are_enforced(tmp_path):
    conn = store.connect(Home(tmp_path / "h"))
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO memberships (group_id, user_id) VALUES (999, 0)")


def test_the_api_uses_the_same_settings(localtailr_home):
    KV().put("k", "v")
    conn = store.connection(localtailr_home.home)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_a_failed_transaction_changes_nothing(tmp_path):
    conn = store.connect(Home(tmp_path / "h"))
    with pytest.raises(RuntimeError), store.transaction(conn):
        conn.execute("INSERT INTO tags (name, value) VALUES ('a', 'b')")
        raise RuntimeError("boom")
    assert conn.execute("SELECT count(*) FROM tags").fetchone()[0] == 0


# --- migrations -----------------------------------------------------------------------------


def _make_version_1_home(home: Home) -> None:
    home.ensure()
    conn = sqlite3.connect(home.db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for statement in store._statements(store.MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO users (user_id, name, first_name, created_at) VALUES (7, 'olduser', 'Old', 1)"
    )
    conn.execute(
        "INSERT INTO kv (environment, key, value, updated_at, updated_by)"
        " VALUES ('dev', 'old_key', 'old value', 1, 0)"
    )
    for perm in ("read", "write"):
        conn.execute("INSERT INTO acl VALUES ('kv/dev/old_key', ?, 0)", (perm,))
    conn.close()


def test_an_old_home_is_upgraded_in_place_keeping_its_data(tmp_path, monkeypatch):
    home = Home(tmp_path / "old-home")
    _make_version_1_home(home)
    raw = sqlite3.connect(home.db_path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
    assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'jobs'").fetchone() is None
    raw.close()

    monkeypatch.setenv("LOCALTAILR_HOME", str(home.root))
    monkeypatch.delenv("LOCALTAILR_USER", raising=False)
    monkeypatch.delenv("DATATAILR_JOB_ENVIRONMENT", raising=False)
    assert KV().get("old_key") == "old value"  # opening migrates
    KV().put("new_key", "new value")

    raw = sqlite3.connect(home.db_path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION > 1
    assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'jobs'").fetchone() == ("jobs",)
    assert raw.execute("SELECT name FROM users WHERE user_id = 7").fetchone() == ("olduser",)
    assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    raw.close()
    store.forget(home)


def test_migrating_twice_is_harmless(tmp_path):
    home = Home(tmp_path / "h")
    conn = store.connect(home)
    assert store.migrate(conn) == store.SCHEMA_VERSION
    conn.close()
    assert store.schema_version(store.connect(home)) == store.SCHEMA_VERSION


# --- many writers at once ----------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys
    from localtailr import KV, Blob, Secrets
    me, n = sys.argv[1], int(sys.argv[2])
    for i in range(n):
        KV().put(f"{me}-k{i}", f"value {me} {i}")
        Secrets().put(f"{me}-s{i}", f"secret {me} {i}")
        Blob().put_blob(f"{me}/b{i}", f"blob {me} {i}")
        KV().put("contended", f"{me} {i}")
""")


def test_concurrent_writers_all_land(localtailr_home):
    n, procs = 40, []
    for w in range(5):
        procs.append(subprocess.Popen([sys.executable, "-c", WRITER, f"w{w}", str(n)],
                                      stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert "locked" not in err
    for w in range(5):
        for i in range(n):
            assert KV().get(f"w{w}-k{i}") == f"value w{w} {i}"
            assert Secrets().get(f"w{w}-s{i}") == f"secret w{w} {i}"
            assert Blob().get_blob(f"w{w}/b{i}") == f"blob w{w} {i}".encode()
    assert len(KV().ls()) == 5 * n + 1
    conn = store.connection(localtailr_home.home)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_long_writer_does_not_make_others_fail(localtailr_home):
    """A transaction held far longer than busy_timeout: the other writer waits and retries."""
    holder = textwrap.dedent("""
        import sys, time
        from localtailr import store
        from localtailr.core.home import Home
        conn = store.connect(Home.current())
        with store.transaction(conn):
            conn.execute("INSERT INTO tags (name, value) VALUES ('held', 'x')")
            print("holding", flush=True)
            time.sleep(float(sys.argv[1]))
    """)
    hold = store.BUSY_TIMEOUT_MS / 1000 + 1.5
    p = subprocess.Popen([sys.executable, "-c", holder, str(hold)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "holding"
    KV().put("waited", "yes")  # must wait out the holder, not raise "database is locked"
    assert p.wait(timeout=60) == 0
    assert KV().get("waited") == "yes"


# --- writers killed with SIGKILL --------------------------------------------------------------

KILLED_WRITER = textwrap.dedent("""
    import sys
    from localtailr import KV, Blob, Secrets
    run = sys.argv[1]
    out = sys.stdout
    i = 0
    while True:
        KV().put(f"{run}-k{i}", f"kv {run} {i}")
        Secrets().put(f"{run}-s{i}", f"secret {run} {i}")
        Blob().put_blob(f"{run}/b{i}", f"blob {run} {i}" * 1000)
        out.write(f"{i}\\n")
        out.flush()  # acknowledged: the parent may rely on all three writes
        i += 1
""")


@pytest.mark.slow
def test_writer_killed_mid_operation_loses_no_acknowledged_write(localtailr_home):
    rng = random.Random(os.getpid())
    home = localtailr_home.home
    acknowledged: dict[str, int] = {}
    for run in ("r0", "r1", "r2", "r3"):
        p = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, run], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        assert p.stdout.readline() == "0\n"  # it is running
        time.sleep(rng.uniform(0.2, 1.2))
        os.kill(p.pid, signal.SIGKILL)
        rest, err = p.communicate(timeout=60)
        assert p.returncode == -signal.SIGKILL, err
        acknowledged[run] = 1 + len(rest.splitlines())

        conn = sqlite3.connect(home.db_path)  # a clean reopen by a plain client
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        store.forget(home)
        for r, count in acknowledged.items():
            for i in range(count):
                assert KV().get(f"{r}-k{i}") == f"kv {r} {i}"
                assert Secrets().get(f"{r}-s{i}") == f"secret {r} {i}"
                assert Blob().get_blob(f"{r}/b{i}") == (f"blob {r} {i}" * 1000).encode()
        KV().put(f"after-{run}", "the store still takes writes")
    assert all(count >= 1 for count in acknowledged.values())


def test_info_after_kill_reports_a_clean_store(localtailr_home):
    """A SIGKILLed writer's leftovers (WAL, temporary blob files) do not break the CLI."""
    p = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, "x"], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "0\n"
    os.kill(p.pid, signal.SIGKILL)
    p.communicate(timeout=60)
    exe = os.path.join(os.path.dirname(sys.executable), "localtailr")
    result = subprocess.run([exe, "info", "--json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["keys"] >= 1


def test_write_retries_a_locked_database_until_it_is_free(localtailr_home):
    import sqlite3
    import threading

    from localtailr import store

    holder = store.connect(localtailr_home.home)
    holder.execute("BEGIN IMMEDIATE")
    impatient = sqlite3.connect(localtailr_home.home.db_path, isolation_level=None, timeout=0)
    impatient.execute("PRAGMA busy_timeout = 0")
    threading.Timer(0.3, lambda: holder.execute("COMMIT")).start()
    store.write(impatient, "INSERT INTO tags (name, value) VALUES ('k', 'v')")
    assert impatient.execute("SELECT value FROM tags WHERE name = 'k'").fetchone()[0] == "v"


def test_wait_for_commit_returns_on_another_connections_commit(localtailr_home):
    """A waiter with no deadline returns once another connection commits; with a deadline
    passed and no commit it returns the version it had."""
    import threading

    conn = store.connection(localtailr_home.home)
    seen = store.wait_for_commit(conn, None, None)
    assert store.wait_for_commit(conn, seen, time.monotonic() - 1) == seen
    started = threading.Event()

    def commit_elsewhere():
        started.wait()
        other = sqlite3.connect(localtailr_home.home.db_path, isolation_level=None)
        other.execute("INSERT INTO kv (environment, key, value, updated_at, updated_by)"
                      " VALUES ('dev', 'wait-test', '1', 0, 0)")
        other.close()

    thread = threading.Thread(target=commit_elsewhere)
    thread.start()
    started.set()
    assert store.wait_for_commit(conn, seen, None) != seen
    thread.join()


def test_run_counts_follow_every_change_to_top_level_runs(localtailr_home):
    """The overview's counts (run_counts, kept by triggers) equal a GROUP BY over the
    top-level runs after inserts, state changes, re-parenting, deletes and job deletes."""
    import random as _random

    conn = store.connection(localtailr_home.home)
    rng = _random.Random(12)
    with store.transaction(conn):
        for j in range(3):
            conn.execute("INSERT INTO jobs (job_id, name, environment, type, current_version,"
                         " created_at, owner_id) VALUES (?, ?, 'dev', 'batch', 1, 0, 0)",
                         (j + 1, f"job-{j}"))

    def truth():
        return {(r[0], r[1]): r[2] for r in conn.execute(
            "SELECT job_id, state, count(*) FROM runs WHERE parent_run_id IS NULL"
            " GROUP BY job_id, state")}

    def counted():
        return {(r[0], r[1]): r[2] for r in conn.execute(
            "SELECT job_id, state, n FROM run_counts WHERE n != 0")}

    states = ("pending", "running", "succeeded", "failed")
    for step in range(300):
        ids = [r[0] for r in conn.execute("SELECT run_id FROM runs")]
        op = rng.random()
        if op < 0.4 or not ids:
            parent = rng.choice(ids) if ids and rng.random() < 0.3 else None
            conn.execute("INSERT INTO runs (job_id, version, parent_run_id, state, run_as,"
                         " environment, created_at) VALUES (?, 1, ?, ?, 0, 'dev', 0)",
                         (rng.randint(1, 3), parent, rng.choice(states)))
        elif op < 0.8:
            conn.execute("UPDATE runs SET state = ? WHERE run_id = ?", (rng.choice(states), rng.choice(ids)))
        elif op < 0.9:
            conn.execute("UPDATE runs SET job_id = ? WHERE run_id = ?", (rng.randint(1, 3), rng.choice(ids)))
        else:
            conn.execute("DELETE FROM runs WHERE run_id = ?", (rng.choice(ids),))
        assert counted() == truth(), step
    conn.execute("DELETE FROM jobs WHERE job_id = 2")
    assert counted() == truth()
    assert not conn.execute("SELECT 1 FROM run_counts WHERE job_id = 2").fetchone()


def test_a_forked_child_opens_its_own_connection(localtailr_home):
    home = localtailr_home.home
    parent = store.connection(home)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its copy of the parent's connection must not be used
        try:
            mine = store.connection(home)
            ok = mine is not parent and mine.execute("SELECT count(*) FROM users").fetchone()[0] >= 1
            os.write(write, b"own" if ok else b"shared")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"own"
    assert store.connection(home) is parent  # the parent keeps its own


def test_a_forgotten_connection_is_not_handed_out_again(localtailr_home):
    home = localtailr_home.home
    first = store.connection(home)
    assert store.connection(home) is first  # the same Home again: the remembered one
    store.forget(home)
    second = store.connection(home)
    assert second is not first
    assert second.execute("SELECT 1").fetchone()[0] == 1  # open
    assert store.connection(Home(home.root)) is second  # an equal Home finds it too
