"""Key history, and commits: all of a commit or none of it, even when its process is killed."""

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import localtailr
from localtailr import ACL, KV, Blob, Secrets, User
from localtailr.platform import commits
from localtailr.platform import kv as kv_ops
from localtailr.platform.context import context


def test_key_history_get_and_restore(localtailr_home):
    kv = KV()
    kv.put("k", "a")
    kv.put("k", "b")
    kv.delete("k")
    h = kv.history("k")
    assert [(v["version"], v["value"], v["deleted"], v["who"]) for v in h] == [
        (1, "a", False, "root"), (2, "b", False, "root"), (3, None, True, "root")]
    assert kv.get("k", version=1) == "a"
    with pytest.raises(KeyError, match="deletion"):
        kv.get("k", version=3)
    with pytest.raises(KeyError, match="no version 7"):
        kv.get("k", version=7)
    with pytest.raises(ValueError, match="invalid version"):
        kv.get("k", version=0)
    kv.restore("k", 1)
    assert kv.get("k") == "a" and kv.history("k")[-1]["version"] == 4


def test_secret_history_keeps_who_and_when_never_the_value(localtailr_home):
    Secrets().put("token", "s3cr3t-one")
    Secrets().put("token", "s3cr3t-two")
    h = Secrets().history("token")
    assert [v["version"] for v in h] == [1, 2] and all("value" not in v for v in h)
    rows = context().conn.execute("SELECT * FROM kv_versions WHERE kind = 'secret'").fetchall()
    assert all(r["value"] is None for r in rows)
    with pytest.raises(ValueError, match="not kept"):
        kv_ops.get(context(), "token", kv_ops.SECRETS, version=1)


def test_key_history_needs_read(localtailr_home, monkeypatch):
    User.add("bob", "B", "C", "b@example.com", "pw")
    KV().put("private", "x")
    monkeypatch.setenv("LOCALTAILR_USER", "bob")
    with pytest.raises(localtailr.PermissionError):
        KV().history("private")
    with pytest.raises(localtailr.PermissionError):
        KV().get("private", version=1)


def test_a_commit_applies_everything_together(localtailr_home, tmp_path):
    Blob().put("old.csv", b"old")
    src = tmp_path / "raw.bin"
    src.write_bytes(b"raw" * 1000)
    with Blob().commit("load 2026-11-25") as c:
        c.put("daily/prices.csv", "a,b\n1,2\n")
        c.put_file("daily/raw.bin", src)
        c.delete("old.csv")
        c.kv.put("daily.loaded", "2026-11-25")
        assert not Blob().exists("daily/prices.csv")  # nothing visible before the end
        with pytest.raises(KeyError):
            KV().get("daily.loaded")
    assert Blob().get("daily/prices.csv") == b"a,b\n1,2\n" and Blob().get("daily/raw.bin") == b"raw" * 1000
    assert not Blob().exists("old.csv") and KV().get("daily.loaded") == "2026-11-25"
    shown = commits.show(context(), c.id)
    assert shown["message"] == "load 2026-11-25" and shown["author"] == "root"
    assert {(x["resource"], x["version"], x["deleted"]) for x in shown["changes"]} == {
        ("blob/daily/prices.csv", 1, False), ("blob/daily/raw.bin", 1, False),
        ("blob/old.csv", 2, True), ("kv/dev/daily.loaded", 1, False)}
    assert Blob().history("daily/prices.csv")[0]["commit_id"] == c.id
    assert [x["commit_id"] for x in commits.ls(context())] == [c.id]


def test_a_commit_that_raises_leaves_nothing(localtailr_home):
    home = localtailr_home.home
    with pytest.raises(RuntimeError, match="boom"):
        with Blob().commit("half") as c:
            c.put("x", b"1" * 5000)
            c.kv.put("y", "2")
            raise RuntimeError("boom")
    assert not Blob().exists("x") and commits.ls(context()) == []
    with pytest.raises(KeyError):
        KV().get("y")
    assert list((home.blobs / "tmp").glob("*.part")) == []


def test_a_commit_denied_halfway_applies_nothing(localtailr_home, monkeypatch):
    User.add("alice", "A", "B", "a@example.com", "pw")
    Blob().put("theirs", b"root's", ACL(read=["alice"], write=["root"]))
    monkeypatch.setenv("LOCALTAILR_USER", "alice")
    with pytest.raises(localtailr.PermissionError):
        with Blob().commit("sneaky") as c:
            c.put("mine", b"ok")
            c.delete("theirs")
    assert not Blob().exists("mine") and Blob().get("theirs") == b"root's"
    monkeypatch.setenv("LOCALTAILR_USER", "root")
    assert commits.ls(context()) == []


@pytest.mark.parametrize("message", ["", "   ", None, 5, "x" * 5000])
def test_a_commit_needs_a_message(localtailr_home, message):
    with pytest.raises(ValueError, match="commit message"):
        Blob().commit(message)


def test_a_finished_commit_takes_no_more_writes(localtailr_home):
    with Blob().commit("one") as c:
        c.put("a", b"1")
    with pytest.raises(ValueError, match="already finished"):
        c.put("b", b"2")


KILLED = textwrap.dedent("""
    import os, sys, time
    from localtailr import Blob
    with Blob().commit("never") as c:
        c.put("k/one", b"1" * 100000)
        c.put("k/two", b"2")
        c.kv.put("k.flag", "set")
        print("staged", flush=True)
        time.sleep(60)
""")


def test_a_killed_commit_is_invisible_after_restart(localtailr_home):
    env = {**os.environ, "LOCALTAILR_HOME": str(localtailr_home.root)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "staged"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert Blob().ls() == [] and commits.ls(context()) == []
    with pytest.raises(KeyError):
        KV().get("k.flag")
    parts = list((localtailr_home.home.blobs / "tmp").glob("*.part"))
    assert parts  # left behind by the killed writer, for the collector (see test_blob_gc)


def test_racing_commits_are_both_recorded_in_order(localtailr_home):
    Blob().put("shared", b"0")
    barrier = threading.Barrier(2)
    done = []

    def writer(tag):
        with Blob().commit(f"writer {tag}") as c:
            c.put("shared", tag.encode())
            c.kv.put("last", tag)
            barrier.wait(timeout=30)
        done.append(c.id)

    threads = [threading.Thread(target=writer, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(done) == 2
    h = Blob().history("shared")
    assert [v["version"] for v in h] == [1, 2, 3]
    assert [v["commit_id"] for v in h[1:]] == sorted(done)
    by_commit = {v["commit_id"]: Blob().get("shared", version=v["version"]) for v in h[1:]}
    assert set(by_commit.values()) == {b"a", b"b"}
    assert Blob().get("shared") == by_commit[max(done)]
    assert KV().get("last") == by_commit[max(done)].decode()


RACER = textwrap.dedent("""
    import sys
    from localtailr import Blob
    tag = sys.argv[1]
    for i in range(20):
        with Blob().commit(f"{tag} {i}") as c:
            c.put("contested", f"{tag} {i}")
            c.kv.put("contested", f"{tag} {i}")
""")


@pytest.mark.slow
def test_commits_racing_from_two_processes_lose_nothing(localtailr_home):
    env = {**os.environ, "LOCALTAILR_HOME": str(localtailr_home.root)}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, tag], env=env) for tag in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    h = Blob().history("contested")
    assert [v["version"] for v in h] == list(range(1, 41))
    assert [v["commit_id"] for v in h] == sorted(v["commit_id"] for v in h)  # in commit order
    contents = [Blob().get("contested", version=v["version"]).decode() for v in h]
    assert sorted(contents) == sorted(f"{t} {i}" for t in "ab" for i in range(20))
    for tag in "ab":  # each writer's own commits in its order
        mine = [int(c.split()[1]) for c in contents if c.startswith(tag)]
        assert mine == list(range(20))
    assert [v["value"] for v in KV().history("contested")] == contents
