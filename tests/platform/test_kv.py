"""Issue 2, data: KV per environment, and Secrets encrypted at rest."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

import localtailr
from localtailr import KV, Environment, Secrets

SECRET = "pa55-Unique-Secret-Value-7f3e"
LOCALTAILR = str(Path(sys.executable).with_name("localtailr"))


def raw_bytes(home) -> bytes:
    """The database file and its WAL, as stored on disk."""
    out = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(home.db_path) + suffix)
        if p.exists():
            out += p.read_bytes()
    return out


# --- KV -------------------------------------------------------------------------


def test_kv_put_get_ls_delete(localtailr_home):
    kv = KV()
    kv.put("db_url", "postgresql://h/db")
    kv.put("other", "")
    assert kv.get("db_url") == "postgresql://h/db" and kv.get("other") == ""
    assert [e["key"] for e in kv.ls()] == ["db_url", "other"]
    assert isinstance(kv.ls()[0]["acl"], localtailr.ACL)
    kv.put("db_url", "changed")
    assert kv.get("db_url") == "changed"
    kv.delete("db_url")
    assert [e["key"] for e in kv.ls()] == ["other"]


def test_kv_missing_key_is_both_key_error_and_runtime_error(localtailr_home):
    for call in (lambda: KV().get("nope"), lambda: KV().delete("nope"), lambda: KV().acls("nope")):
        with pytest.raises(KeyError) as info:
            call()
        assert isinstance(info.value, RuntimeError)
        assert "nope" in str(info.value)


def test_kv_environments_are_separate(localtailr_home, monkeypatch):
    for env in ("dev", "pre", "prod"):
        monkeypatch.setenv("DATATAILR_JOB_ENVIRONMENT", env)
        KV().put("db_url", f"url-{env}")
    for env in ("dev", "pre", "prod"):
        monkeypatch.setenv("DATATAILR_JOB_ENVIRONMENT", env)
        assert KV().get("db_url") == f"url-{env}"
        assert [e["key"] for e in KV().ls()] == ["db_url"]
    monkeypatch.setenv("DATATAILR_JOB_ENVIRONMENT", "pre")
    KV().delete("db_url")
    with pytest.raises(KeyError):
        KV().get("db_url")
    monkeypatch.delenv("DATATAILR_JOB_ENVIRONMENT")  # default dev
    assert KV().get("db_url") == "url-dev"
    assert KV("prod").get("db_url") == "url-prod"
    assert KV(Environment.PROD).get("db_url") == "url-prod"


def test_kv_environment_read_at_call_time(localtailr_home, monkeypatch):
    kv = KV()
    kv.put("k", "dev value")
    monkeypatch.setenv("DATATAILR_JOB_ENVIRONMENT", "prod")
    with pytest.raises(KeyError):
        kv.get("k")


def test_unknown_environment_is_a_clear_error(localtailr_home, monkeypatch):
    monkeypatch.setenv("DATATAILR_JOB_ENVIRONMENT", "staging")
    with pytest.raises(ValueError, match="'staging'.*DATATAILR_JOB_ENVIRONMENT.*dev, pre, prod"):
        KV().put("k", "v")
    with pytest.raises(ValueError, match="staging"):
        Secrets().get("k")
    monkeypatch.delenv("DATATAILR_JOB_ENVIRONMENT")
    with pytest.raises(ValueError, match="'qa'"):
        KV("qa").get("k")
    assert KV().ls() == []


def test_kv_bad_input_is_refused(localtailr_home):
    for key in ("", "a\x00b", "x" * 513, 5, "a\ud800", "key\n"):
        with pytest.raises(ValueError, match="invalid key"):
            KV().put(key, "v")
    with pytest.raises(ValueError, match="string"):
        KV().put("k", 5)
    with pytest.raises(ValueError, match="Unicode"):
        KV().put("k", "x\ud800")
    assert KV().ls() == []


# --- Secrets --------------------------------------------------------------------


def test_secret_round_trip_and_environments(localtailr_home, monkeypatch):
    Secrets().put("database_password", SECRET)
    assert Secrets().get("database_password") == SECRET
    monkeypatch.setenv("DATATAILR_JOB_ENVIRONMENT", "prod")
    with pytest.raises(KeyError) as info:
        Secrets().get("database_password")
    assert isinstance(info.value, RuntimeError)
    Secrets().put("database_password", "prod-" + SECRET)
    assert Secrets().get("database_password") == "prod-" + SECRET
    monkeypatch.delenv("DATATAILR_JOB_ENVIRONMENT")
    assert Secrets().get("database_password") == SECRET
    Secrets().delete("database_password")
    assert Secrets().ls() == []


def test_secret_value_is_never_in_the_database_in_plain_text(localtailr_home):
    for i in range(20):
        Secrets().put(f"s{i}", f"{SECRET}-{i}")
    Secrets().put("s0", SECRET)  # an update too
    raw = raw_bytes(localtailr_home.home)
    assert b"pa55-Unique" not in raw
    assert SECRET.encode("utf-16-le") not in raw
    conn = localtailr.store.connection(localtailr_home.home)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert b"pa55-Unique" not in raw_bytes(localtailr_home.home)


def test_secret_value_not_in_reprs_listings_or_errors(localtailr_home, monkeypatch):
    Secrets().put("token", SECRET)
    shown = [repr(Secrets()), str(Secrets().ls()), repr(Secrets().acls("token"))]
    assert all(SECRET not in s for s in shown)
    localtailr.User.add("eve", "E", "V", "e@example.com", "pw")
    monkeypatch.setenv("LOCALTAILR_USER", "eve")
    with pytest.raises(localtailr.PermissionError) as info:
        Secrets().get("token")
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


def test_wrong_key_is_a_clear_error(localtailr_home, monkeypatch):
    Secrets().put("token", SECRET)
    monkeypatch.setenv("LOCALTAILR_SECRET_KEY", Fernet.generate_key().decode())
    with pytest.raises(localtailr.SecretKeyError, match="'token'.*cannot be decrypted.*LOCALTAILR_SECRET_KEY"):
        Secrets().get("token")
    monkeypatch.setenv("LOCALTAILR_SECRET_KEY", "not-a-key")
    with pytest.raises(localtailr.SecretKeyError, match="malformed"):
        Secrets().get("token")
    monkeypatch.delenv("LOCALTAILR_SECRET_KEY")
    assert Secrets().get("token") == SECRET


def test_key_from_environment_variable(localtailr_home, monkeypatch):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("LOCALTAILR_SECRET_KEY", key)
    Secrets().put("token", SECRET)
    assert Secrets().get("token") == SECRET
    monkeypatch.delenv("LOCALTAILR_SECRET_KEY")
    with pytest.raises(localtailr.SecretKeyError):
        Secrets().get("token")


def test_key_file_is_private(localtailr_home):
    Secrets().put("token", SECRET)
    assert (localtailr_home.home.key_file.stat().st_mode & 0o777) == 0o600
    assert (localtailr_home.home.root.stat().st_mode & 0o777) == 0o700


def _cli(home, *args, input=None, env=None):
    full = {**os.environ, "LOCALTAILR_HOME": str(home.root), **(env or {})}
    return subprocess.run([LOCALTAILR, *args], input=input, capture_output=True, text=True,
                          env=full, timeout=60)


def test_rotate_key_keeps_every_value(localtailr_home, monkeypatch):
    home = localtailr_home.home
    values = {}
    for env in ("dev", "pre", "prod"):
        for i in range(5):
            values[(env, f"s{i}")] = f"{env}-{i}-{SECRET}"
            Secrets(env).put(f"s{i}", values[(env, f"s{i}")])
    old_key = home.key_file.read_bytes()
    result = _cli(home, "secret", "rotate-key", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"reencrypted": 15}
    assert home.key_file.read_bytes() != old_key
    assert len(home.key_file.read_bytes().split()) == 1
    for (env, key), value in values.items():
        assert Secrets(env).get(key) == value
    # the old key alone no longer decrypts anything
    monkeypatch.setenv("LOCALTAILR_SECRET_KEY", old_key.decode().strip())
    with pytest.raises(localtailr.SecretKeyError):
        Secrets().get("s0")
    monkeypatch.delenv("LOCALTAILR_SECRET_KEY")
    assert b"pa55-Unique" not in raw_bytes(home)


def test_rotate_key_with_a_wrong_key_rotates_nothing(localtailr_home):
    home = localtailr_home.home
    Secrets().put("token", SECRET)
    key_before = home.key_file.read_bytes()
    home.key_file.write_bytes(Fernet.generate_key() + b"\n")  # the key was lost
    result = _cli(home, "secret", "rotate-key")
    assert result.returncode == 1
    assert "cannot be decrypted" in result.stderr and "Traceback" not in result.stderr
    home.key_file.write_bytes(key_before)
    assert Secrets().get("token") == SECRET


def test_cli_secret_value_from_stdin_never_from_argv(localtailr_home):
    home = localtailr_home.home
    refused = _cli(home, "kv", "put", "token", SECRET, "--secure")
    assert refused.returncode != 0 and "never from the command line" in refused.stderr
    refused = _cli(home, "secret", "put", "token", SECRET)
    assert refused.returncode != 0
    assert Secrets().ls() == []
    ok = _cli(home, "secret", "put", "token", input=SECRET + "\n")
    assert ok.returncode == 0, ok.stderr
    assert SECRET not in ok.stdout
    assert Secrets().get("token") == SECRET
    ok = _cli(home, "kv", "put", "token2", "--secure", input=SECRET)
    assert ok.returncode == 0, ok.stderr
    assert Secrets().get("token2") == SECRET


def test_cli_secret_listing_never_shows_values(localtailr_home):
    home = localtailr_home.home
    Secrets().put("token", SECRET)
    for args in (("secret", "ls"), ("secret", "ls", "--json"), ("kv", "ls", "--secure"),
                 ("kv", "ls", "--secure", "--json"), ("secret", "acls", "token"), ("info",)):
        result = _cli(home, *args)
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.stdout + result.stderr
        assert "token" in result.stdout or args[-1] in ("info", "token")
    got = _cli(home, "secret", "get", "token")
    assert got.stdout.strip() == SECRET  # asked for explicitly


def test_non_admin_get_follows_acl_and_membership_changes_made_elsewhere(localtailr_home, monkeypatch):
    """A non-admin get checks READ in its own query, with the caller's principals as last
    seen: a change committed by another connection (an ACL entry or a membership
    removed) is honoured at the next get."""
    import sqlite3

    localtailr.User.add("ann")
    team = localtailr.Group.add("team")
    team.add_users(["ann"])
    KV().put("by-user", "u", acl={"read": [localtailr.User.get("ann").user_id]})
    KV().put("by-group", "g", acl={"read": [-team.group_id]})
    monkeypatch.setenv("LOCALTAILR_USER", "ann")
    assert KV().get("by-user") == "u" and KV().get("by-group") == "g"
    with pytest.raises(PermissionError):
        KV().put("by-user", "x")  # READ only
    other = sqlite3.connect(localtailr_home.home.db_path, isolation_level=None)
    other.execute("DELETE FROM memberships WHERE group_id = ?", (team.group_id,))
    with pytest.raises(PermissionError):
        KV().get("by-group")
    assert KV().get("by-user") == "u"
    other.execute("DELETE FROM acl WHERE resource = 'kv/dev/by-user'")
    with pytest.raises(PermissionError):
        KV().get("by-user")
    other.close()


def test_ls_pages_in_key_order_with_acls_and_counts_what_the_caller_may_read(localtailr_home, monkeypatch):
    from localtailr.platform import kv as platform_kv
    from localtailr.platform.context import context

    ann = localtailr.User.add("ann")
    team = localtailr.Group.add("team")
    team.add_users(["ann"])
    for i in range(30):
        readers = [ann.user_id] if i % 3 == 0 else [-team.group_id] if i % 3 == 1 else []
        KV().put(f"k{i:02d}", str(i), acl={"read": readers, "write": [0]})
    KV(environment="pre").put("elsewhere", "x")
    root = context()
    everything = platform_kv.ls(root)
    assert [e["key"] for e in everything] == [f"k{i:02d}" for i in range(30)]
    assert platform_kv.ls(root, limit=5, offset=10) == everything[10:15]
    assert platform_kv.count(root) == 30
    assert everything[0]["acl"] == {"read": [ann.user_id], "write": [0]}
    assert everything[2]["acl"] == {"write": [0]}
    monkeypatch.setenv("LOCALTAILR_USER", "ann")
    mine = platform_kv.ls(context())
    assert [e["key"] for e in mine] == [f"k{i:02d}" for i in range(30) if i % 3 != 2]
    assert platform_kv.count(context()) == 20
    assert platform_kv.ls(context(), limit=3, offset=19) == mine[19:]
    assert [e["key"] for e in KV().ls()] == [e["key"] for e in mine]
    assert KV().ls()[1]["acl"] == localtailr.ACL.from_dict(mine[1]["acl"])
    for bad in ({"limit": -1}, {"offset": -2}, {"limit": True}, {"offset": "1"}):
        with pytest.raises(ValueError):
            platform_kv.ls(context(), **bad)


def test_ls_matches_each_keys_own_acl_whatever_the_key_order(localtailr_home, monkeypatch):
    """ls pairs keys and ACL rows in one ordered walk: keys that sort around each other
    (prefixes, punctuation, non-ASCII) and keys the caller may not read in between still
    each get their own ACL, the same as ``acls(key)``."""
    from localtailr.platform import kv as platform_kv
    from localtailr.platform.context import context

    ann = localtailr.User.add("ann")
    keys = ["a", "a/b", "a-b", "a b", "aé", "ä", "z", "é/ü", "日本", "a/b/c", "A", "~"]
    for i, k in enumerate(keys):
        readers = [ann.user_id] if i % 2 == 0 else []
        KV().put(k, str(i), acl={"read": readers, "write": [0], "operate": [0] * (i % 3 == 0)})
    KV(environment="pre").put("a/b", "elsewhere", acl={"promote": [ann.user_id]})
    for who, expect in (("root", sorted(keys)), ("ann", sorted(k for i, k in enumerate(keys) if i % 2 == 0))):
        monkeypatch.setenv("LOCALTAILR_USER", who)
        listed = platform_kv.ls(context())
        assert [e["key"] for e in listed] == expect
        monkeypatch.setenv("LOCALTAILR_USER", "root")
        for e in listed:
            assert e["acl"] == platform_kv.acls(context(), e["key"])
        monkeypatch.setenv("LOCALTAILR_USER", who)
        assert [(e["key"], e["acl"]) for e in KV().ls()] == [
            (e["key"], localtailr.ACL.from_dict(e["acl"])) for e in listed]


def test_ls_builds_its_listing_without_collector_passes_and_restores_the_collector(localtailr_home):
    """A listing of many keys runs no cyclic-GC pass while it is built (each pass over a
    growing heap is what made ls super-linear), and leaves the collector as it found it."""
    import gc
    import sqlite3

    from localtailr.core.bulk import no_collection

    conn = sqlite3.connect(localtailr_home.home.db_path, isolation_level=None)
    with conn:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO kv (environment, key, value, updated_at, updated_by) VALUES ('dev', ?, 'v', 0, 0)",
                         ((f"k{i:05d}",) for i in range(3000)))
        conn.executemany("INSERT INTO acl (resource, permission, principal) VALUES (?, ?, 0)",
                         ((f"kv/dev/k{i:05d}", p) for i in range(3000) for p in ("read", "write")))
    conn.close()
    passes = []

    def count(phase, info):
        if phase == "start":
            passes.append(info["generation"])

    gc.callbacks.append(count)
    try:
        listed = KV().ls()
        # at most the one young-generation pass that follows re-enabling (dozens without the pause)
        assert len(listed) == 3000 and len(passes) <= 1 and 2 not in passes
        assert gc.isenabled()
        gc.disable()
        KV().ls()
        assert not gc.isenabled()  # left as it was found
        gc.enable()
        with pytest.raises(RuntimeError), no_collection():
            raise RuntimeError("boom")
        assert gc.isenabled()
    finally:
        gc.callbacks.remove(count)
        gc.enable()
    assert len(listed) == 3000 and listed[1]["acl"].to_dict() == {"read": [0], "write": [0]}
