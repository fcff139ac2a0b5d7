"""A KV get or put checks its caller inside its own statement: the caller resolved earlier on
the connection stands while the identity generation (moved by triggers on users, groups and
memberships, whoever changes them) holds; a put of an existing key is one UPDATE that checks
WRITE and that generation. Every change made elsewhere is honoured at the next call."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import localtailr
from localtailr import KV, Secrets
from localtailr.core.errors import PermissionError
from localtailr.platform import kv as platform_kv
from localtailr.platform.context import context


def _other(home) -> sqlite3.Connection:
    """A plain client of the same database: changes made where no cache can see them."""
    return sqlite3.connect(home.db_path, isolation_level=None)


def _generation(conn) -> int:
    return conn.execute("SELECT n FROM identity_generation").fetchone()[0]


def _versions(home, key: str) -> list[tuple]:
    with _other(home) as conn:
        return conn.execute("SELECT version, value, created_by FROM kv_versions WHERE kind = 'key'"
                            " AND environment = 'dev' AND key = ? ORDER BY version", (key,)).fetchall()


@pytest.fixture
def ann(localtailr_home, monkeypatch):
    """ann, a member of team, who may read and write "k" through the group."""
    localtailr.User.add("ann")
    team = localtailr.Group.add("team")
    team.add_users(["ann"])
    KV().put("k", "v1", acl={"read": [-team.group_id], "write": [-team.group_id]})
    monkeypatch.setenv("LOCALTAILR_USER", "ann")
    KV().put("k", "v2")  # ann is now resolved and remembered on this connection
    return team


def test_every_change_to_users_groups_or_memberships_moves_the_generation(localtailr_home):
    other = _other(localtailr_home.home)
    seen = [_generation(other)]
    steps = [
        "INSERT INTO users (name, created_at) VALUES ('bob', 0)",
        "UPDATE users SET disabled = 1 WHERE name = 'bob'",
        "INSERT INTO groups (name, created_at) VALUES ('g', 0)",
        "INSERT INTO memberships (group_id, user_id) SELECT g.group_id, u.user_id FROM groups g, users u"
        " WHERE g.name = 'g' AND u.name = 'bob'",
        "DELETE FROM memberships WHERE group_id = (SELECT group_id FROM groups WHERE name = 'g')",
        "UPDATE groups SET name = 'h' WHERE name = 'g'",
        "DELETE FROM groups WHERE name = 'h'",
        "DELETE FROM users WHERE name = 'bob'",
    ]
    for sql in steps:
        other.execute(sql)
        seen.append(_generation(other))
        assert seen[-1] > seen[-2], sql
    other.execute("INSERT INTO kv (environment, key, value, updated_at, updated_by) VALUES ('dev', 'x', 'y', 0, 0)")
    assert _generation(other) == seen[-1]  # data is not identity
    other.close()


def test_the_caller_stays_resolved_across_other_connections_data_writes(ann, localtailr_home):
    before = context(lazy=True).cached_at()
    other = _other(localtailr_home.home)
    other.execute("INSERT INTO kv (environment, key, value, updated_at, updated_by) VALUES ('dev', 'x', 'y', 0, 0)")
    other.close()
    assert KV().get("k") == "v2"
    after = context(lazy=True).cached_at()
    assert before is not None and after is not None and after[0] is before[0]  # not resolved again


def test_a_user_disabled_elsewhere_can_neither_get_nor_put(ann, localtailr_home):
    other = _other(localtailr_home.home)
    other.execute("UPDATE users SET disabled = 1 WHERE name = 'ann'")
    other.close()
    with pytest.raises(PermissionError, match="disabled"):
        KV().get("k")
    with pytest.raises(PermissionError, match="disabled"):
        KV().put("k", "v3")
    assert [v[1] for v in _versions(localtailr_home.home, "k")] == ["v1", "v2"]


def test_a_put_refused_after_a_change_made_elsewhere_changes_nothing(ann, localtailr_home):
    other = _other(localtailr_home.home)
    other.execute("DELETE FROM memberships WHERE group_id = ?", (ann.group_id,))
    with pytest.raises(PermissionError, match="WRITE"):
        KV().put("k", "v3")  # the group's WRITE no longer stands for ann
    other.execute("INSERT INTO memberships (group_id, user_id) SELECT ?, user_id FROM users WHERE name = 'ann'",
                  (ann.group_id,))
    KV().put("k", "v3")
    other.execute("DELETE FROM acl WHERE resource = 'kv/dev/k' AND permission = 'write'")
    with pytest.raises(PermissionError, match="WRITE"):
        KV().put("k", "v4")  # the ACL entry is gone (no identity change: the statement's own check)
    other.close()
    assert [v[1] for v in _versions(localtailr_home.home, "k")] == ["v1", "v2", "v3"]
    with sqlite3.connect(localtailr_home.home.db_path) as conn:
        assert conn.execute("SELECT value, version FROM kv WHERE key = 'k'").fetchone() == ("v3", 3)


def test_a_put_of_an_existing_key_records_its_version_writer_and_run(ann, localtailr_home, monkeypatch):
    ann_id = localtailr.User.get("ann").user_id
    assert platform_kv.put(context(lazy=True), "k", "v3") == 3
    monkeypatch.setenv("LOCALTAILR_RUN_ID", "42")
    assert platform_kv.put(context(lazy=True), "k", "v4") == 4
    monkeypatch.delenv("LOCALTAILR_RUN_ID")
    assert _versions(localtailr_home.home, "k") == [(1, "v1", 0), (2, "v2", ann_id), (3, "v3", ann_id),
                                                    (4, "v4", ann_id)]
    history = KV().history("k")
    assert [(h["version"], h["who"], h["run_id"]) for h in history][-2:] == [(3, "ann", None), (4, "ann", 42)]
    assert KV().get("k") == "v4" and KV().get("k", version=2) == "v2"


def test_an_admin_who_leaves_the_admin_group_elsewhere_loses_the_right_to_put(localtailr_home, monkeypatch):
    localtailr.User.add("boss")
    localtailr.Group.get("admin").add_users(["boss"])
    monkeypatch.setenv("LOCALTAILR_USER", "boss")
    KV().put("owned-by-boss", "a", acl={"read": [0], "write": [0]})  # only root's rights
    KV().put("owned-by-boss", "b")  # as an admin, remembered
    other = _other(localtailr_home.home)
    other.execute("DELETE FROM memberships WHERE user_id = (SELECT user_id FROM users WHERE name = 'boss')")
    other.close()
    with pytest.raises(PermissionError, match="WRITE"):
        KV().put("owned-by-boss", "c")
    with pytest.raises(PermissionError, match="READ"):
        KV().get("owned-by-boss")
    assert [v[1] for v in _versions(localtailr_home.home, "owned-by-boss")] == ["a", "b"]


def test_secrets_and_new_keys_still_take_the_checked_path(ann, localtailr_home):
    with pytest.raises(PermissionError, match="ADMIN"):
        Secrets().put("token", "s")  # creating a secret needs an admin
    KV().put("new", "n")  # a new key: its creator's full rights
    assert KV().acls("new").to_dict()["write"] == [localtailr.User.get("ann").user_id]
    KV().put("new", "n2")
    assert [v[1] for v in _versions(localtailr_home.home, "new")] == ["n", "n2"]


UPDATER = r"""
import sys
from localtailr import KV
kv = KV()
kv.put("counter", "0")
print(0, flush=True)
i = 0
while True:
    i += 1
    kv.put("counter", str(i))
    print(i, flush=True)
"""


def test_an_acknowledged_update_survives_kill_9(localtailr_home):
    env = {**os.environ, "LOCALTAILR_HOME": str(localtailr_home.home.root)}
    p = subprocess.Popen([sys.executable, "-c", UPDATER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    assert p.stdout.readline() == "0\n"
    deadline = time.monotonic() + 60
    last = 0
    while last < 200 and time.monotonic() < deadline:  # enough updates to be in the fast path
        last = int(p.stdout.readline())
    os.kill(p.pid, signal.SIGKILL)
    rest, err = p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL, err
    acknowledged = int(rest.split()[-1]) if rest.split() else last
    with sqlite3.connect(localtailr_home.home.db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        value, version = conn.execute("SELECT value, version FROM kv WHERE key = 'counter'").fetchone()
        newest = conn.execute("SELECT max(version) FROM kv_versions WHERE key = 'counter'").fetchone()[0]
    assert int(value) >= acknowledged and version == newest == int(value) + 1
    assert KV().get("counter") == value
