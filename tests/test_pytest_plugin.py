"""Issue 2, testing support: the pytest plugin gives each test its own isolated home,
with the caller's environment variables cleaned, in a user's own test suite."""

import os
import subprocess
import sys
import textwrap

from localtailr import KV, User
from localtailr.pytest_plugin import make_home

USERS_SUITE = textwrap.dedent('''
    import os
    import pytest
    from localtailr import KV, Secrets, User

    HOMES = []

    @pytest.mark.parametrize("who", ["first", "second"])
    def test_isolated(localtailr_home, who):
        assert os.environ["LOCALTAILR_HOME"] == str(localtailr_home.root)
        assert localtailr_home.root not in HOMES
        HOMES.append(localtailr_home.root)
        assert KV().ls() == [] and Secrets().ls() == []   # nothing from the other test
        assert [u.name for u in User.ls()] == ["root"]
        KV().put("shared", who)
        Secrets().put("token", who)
        User.add(f"user-{who}", "A", "B", "a@example.com", "pw")
        assert KV().get("shared") == who

    def test_variables_are_cleaned(localtailr_home):
        for var in ("LOCALTAILR_USER", "DATATAILR_JOB_ENVIRONMENT", "LOCALTAILR_SECRET_KEY"):
            assert var not in os.environ, var
        assert User.signed_user().name == "root"
        localtailr_home.as_user("nobody-yet")
        localtailr_home.use_environment("prod")

    def test_changes_do_not_leak_to_the_next_test(localtailr_home):
        assert "LOCALTAILR_USER" not in os.environ
        assert "DATATAILR_JOB_ENVIRONMENT" not in os.environ
''')


def test_a_users_suite_gets_isolated_homes_and_clean_variables(tmp_path):
    (tmp_path / "test_users_suite.py").write_text(USERS_SUITE)
    outer_home = tmp_path / "must-not-be-touched"
    env = {**os.environ, "LOCALTAILR_HOME": str(outer_home), "LOCALTAILR_USER": "ghost",
           "DATATAILR_JOB_ENVIRONMENT": "staging", "LOCALTAILR_SECRET_KEY": "garbage"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "test_users_suite.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    assert not outer_home.exists()


def test_fixture_points_the_api_at_its_home(localtailr_home):
    KV().put("k", "v")
    assert localtailr_home.home.db_path.exists()
    assert str(localtailr_home.root).startswith(os.environ["LOCALTAILR_HOME"])


def test_runtime_helpers(localtailr_home):
    User.add("alice", "A", "B", "a@example.com", "pw")
    localtailr_home.as_user("alice")
    assert User.signed_user().name == "alice"
    localtailr_home.as_user(None)
    assert User.signed_user().name == "root"
    localtailr_home.use_environment("prod")
    KV().put("k", "prod")
    localtailr_home.use_environment(None)
    assert KV("prod").get("k") == "prod" and KV().ls() == []


def test_make_home_gives_a_ready_home(tmp_path):
    home = make_home(tmp_path / "h")
    assert (home.db_path.stat().st_mode & 0o777) == 0o600
    assert (home.root.stat().st_mode & 0o777) == 0o700
    import sqlite3

    from localtailr import store

    conn = sqlite3.connect(home.db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    assert conn.execute("SELECT name FROM users").fetchall() == [("root",)]
    conn.close()
    assert store.connect(home).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
