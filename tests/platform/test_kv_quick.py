"""``kv_quick.get``: the value ``kv.get`` gives whenever that succeeds, None otherwise (the
caller then goes the full way), for every caller, ACL, environment and home state."""

import itertools
import os
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localtailr import store
from localtailr.core import home_folder
from localtailr.platform import context as context_mod
from localtailr.platform import groups, kv, kv_quick, users
from localtailr.platform.context import context

USERS = ("root", "alice", "bob", "carol", "dave", "nobody")
KEYS = ("open", "for alice", "for analysts", "alice writes", "root only", "ünï code", "missing")


def test_constants_follow_the_store_and_the_context():
    assert kv_quick.SCHEMA_VERSION == store.SCHEMA_VERSION
    assert kv_quick.ADMIN_GROUP_ID == context_mod.ADMIN_GROUP_ID
    assert kv_quick.BUSY_TIMEOUT_S * 1000 == store.BUSY_TIMEOUT_MS


def _populate() -> dict[str, int]:
    root = context()
    ids = {u: users.add(root, u)["user_id"] for u in ("alice", "bob", "carol", "dave")}
    ids["root"] = users.get(root, "root")["user_id"]
    analysts = groups.add(root, "analysts")["group_id"]
    groups.add_users(root, "analysts", ["bob"])
    groups.add_users(root, "admin", ["dave"])
    users.set_disabled(root, "carol", True)
    every = {p: [ids["root"]] for p in ("read", "write")}
    for env in ("dev", "pre"):
        ctx = context(environment=env)
        kv.put(ctx, "open", f"o-{env}", {**every, "read": [ids["root"], ids["alice"], ids["bob"],
                                                        ids["carol"], -analysts]})
        kv.put(ctx, "for alice", f"a-{env}\n", {**every, "read": [ids["alice"]]})
        kv.put(ctx, "for analysts", "", {**every, "read": [-analysts]})
        kv.put(ctx, "alice writes", f"w-{env}", {"write": [ids["alice"]]})
        kv.put(ctx, "root only", f"r-{env}", None)
        kv.put(ctx, "ünï code", "välue ✓", {"read": [ids["carol"], ids["alice"]]})
    return ids


def _full(key: str, user: str, environment: str) -> str | None:
    try:
        return kv.get(context(None, user, environment), key)
    except (KeyError, ValueError, PermissionError, RuntimeError):
        return None


def test_same_answer_as_kv_get_for_every_caller_key_and_environment(localtailr_home):
    _populate()
    for user, key, env in itertools.product(USERS, KEYS, ("dev", "pre", "PRE", "prod")):
        assert kv_quick.get(key, None, user, env) == _full(key, user, env), (user, key, env)
    # each way of being allowed, and of not being, was among them
    assert kv_quick.get("root only", None, "dave", "pre") == "r-pre"  # an admin by group
    assert kv_quick.get("for analysts", None, "bob", "dev") == ""  # READ through a group
    assert kv_quick.get("for alice", None, "alice", "PRE") == "a-pre\n"  # READ as a user
    assert kv_quick.get("alice writes", None, "alice", "dev") is None  # WRITE is not READ
    assert kv_quick.get("ünï code", None, "carol", "dev") is None  # disabled
    assert kv_quick.get("open", None, "nobody", "dev") is None  # no such user
    assert kv_quick.get("open", None, "alice", "prod") is None  # not in that environment


def test_defaults_come_from_the_environment_as_for_kv_get(localtailr_home, monkeypatch):
    _populate()
    monkeypatch.setenv("LOCALTAILR_USER", "alice")
    monkeypatch.setenv("DATATAILR_JOB_ENVIRONMENT", "pre")
    assert kv_quick.get("for alice") == "a-pre\n" == kv.get(context(), "for alice")
    assert kv_quick.get("root only") is None  # alice may not read it
    assert kv_quick.get("for alice", str(localtailr_home.root), "root", "dev") == "a-dev\n"
    monkeypatch.setenv("DATATAILR_JOB_ENVIRONMENT", "staging")
    assert kv_quick.get("for alice") is None  # an unknown environment: the full way says so
    monkeypatch.setenv("DATATAILR_JOB_ENVIRONMENT", "dev")
    monkeypatch.setenv("LOCALTAILR_RUN_ID", "7")  # in a job, reads are recorded: the full way
    assert kv_quick.get("for alice") is None


# one home for every example: each puts its own key
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.text(min_size=0, max_size=600))
def test_any_key_is_answered_as_kv_get_would(localtailr_home, key):
    """A key names.key refuses (control characters, lone surrogates, too long, empty) is
    never answered here; any other key is read exactly."""
    ctx = context()
    try:
        kv.put(ctx, key, "v")
    except ValueError:
        assert kv_quick.get(key) is None
        return
    assert kv.get(ctx, key) == "v"
    assert kv_quick.get(key) == ("v" if key.isprintable() else None)


def test_a_home_without_a_database_is_left_as_it_was(tmp_path):
    folder = tmp_path / "nothing-here"
    assert kv_quick.get("k", str(folder)) is None
    assert not folder.exists()
    folder.mkdir()
    assert kv_quick.get("k", str(folder)) is None
    assert os.listdir(folder) == []


def test_another_schema_or_journal_goes_the_full_way(localtailr_home):
    ctx = context()
    kv.put(ctx, "k", "v")
    path = str(localtailr_home.home.db_path)
    assert kv_quick.get("k") == "v"
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
        assert kv_quick.get("k") is None  # a newer schema: not ours to read
        raw.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION - 1}")
        assert kv_quick.get("k") is None  # an older one: the full way migrates it
        raw.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION}")
        assert kv_quick.get("k") == "v"
    finally:
        raw.close()


def test_opening_tightens_the_home_as_the_full_way_does(localtailr_home):
    kv.put(context(), "k", "v")
    loose = localtailr_home.root / "left.txt"
    loose.write_text("x")
    os.chmod(loose, 0o644)
    home_folder._tightened.clear()  # a new process
    assert kv_quick.get("k") == "v"
    assert os.stat(loose).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("path", ["a?b", "a#b", "a%3fb", "with space"])
def test_home_paths_with_uri_characters(tmp_path, monkeypatch, path):
    root = tmp_path / path
    monkeypatch.setenv("LOCALTAILR_HOME", str(root))
    kv.put(context(), "k", f"in {path}")
    try:
        assert kv_quick.get("k") == f"in {path}"
        assert kv_quick.get("k", str(root)) == f"in {path}"
    finally:
        store.forget(context().home)
