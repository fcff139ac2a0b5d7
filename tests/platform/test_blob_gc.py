"""The blob collector: retention, unreferenced objects, stale partial files; from the daemon too."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

import localtailr
from localtailr import KV, Blob, Secrets, User
from localtailr.platform import blob_gc, retention
from localtailr.platform.context import context

DAY = 86400


def objects(home):
    return [p for p in (home.blobs / "objects").rglob("*") if p.is_file()]


def parts(home):
    return sorted(p.name for p in (home.blobs / "tmp").glob("*.part"))


def test_default_retention_keeps_ten_versions_or_seven_days(localtailr_home):
    home = localtailr_home.home
    for i in range(12):
        Blob().put("a", f"version {i + 1:02d}")
    report = blob_gc.collect(context())
    assert report["versions_dropped"] == 0 and len(objects(home)) == 12  # all younger than 7 days
    report = blob_gc.collect(context(), now=time.time() + 8 * DAY)
    assert report["versions_dropped"] == 2 and report["objects_removed"] == 2
    assert report["object_bytes"] == 2 * len("version 01") and report["bytes_freed"] == report["object_bytes"]
    assert [v["version"] for v in Blob().history("a")] == list(range(3, 13))
    assert len(objects(home)) == 10 and Blob().get("a") == b"version 12"
    with pytest.raises(KeyError, match="no version 1"):
        Blob().get("a", version=1)


def test_a_rule_per_prefix(localtailr_home):
    ctx = context()
    retention.set_rule(ctx, "scratch/", keep_versions=1)
    for i in range(3):
        Blob().put("scratch/x", f"s{i}")
        Blob().put("kept/x", f"k{i}")
    report = blob_gc.collect(ctx)
    assert report["versions_dropped"] == 2
    assert [v["version"] for v in Blob().history("scratch/x")] == [3]
    assert [v["version"] for v in Blob().history("kept/x")] == [1, 2, 3]
    assert {r["prefix"] for r in retention.ls(ctx)} == {"", "scratch/"}
    retention.rm(ctx, "scratch/")
    with pytest.raises(KeyError):
        retention.rm(ctx, "scratch/")


def test_key_and_secret_versions_follow_the_rule_of_their_prefix(localtailr_home):
    ctx = context()
    retention.set_rule(ctx, "scratch/", keep_versions=1)
    retention.set_rule(ctx, "week/", keep_days=7)
    for i in range(3):
        for key in ("scratch/k", "kept/k", "week/k"):
            KV().put(key, f"v{i}")
        Secrets().put("scratch/pw", f"s{i}")
    report = blob_gc.collect(ctx)
    assert report["key_versions_dropped"] == 4
    assert [v["version"] for v in KV().history("scratch/k")] == [3] and KV().get("scratch/k") == "v2"
    assert [v["version"] for v in Secrets().history("scratch/pw")] == [3]
    assert [v["version"] for v in KV().history("kept/k")] == [1, 2, 3]  # the default rule: 10 versions
    assert [v["version"] for v in KV().history("week/k")] == [1, 2, 3]
    report = blob_gc.collect(ctx, now=time.time() + 8 * DAY)  # week/: by days only
    assert report["key_versions_dropped"] == 2 and [v["version"] for v in KV().history("week/k")] == [3]
    assert [v["version"] for v in KV().history("kept/k")] == [1, 2, 3]


@pytest.mark.parametrize("prefix, args", [("p/", dict()), ("p/", dict(keep_versions=0)),
                                          ("p/", dict(keep_days=-1)), ("p/", dict(keep_versions="3")),
                                          ("p/", dict(keep_days=True)), (["p"], dict(keep_versions=1)),
                                          ("a\ud800", dict(keep_versions=1)), ("a\n", dict(keep_versions=1))])
def test_bad_rules_are_refused(localtailr_home, prefix, args):
    with pytest.raises(ValueError):
        retention.set_rule(context(), prefix, **args)
    with pytest.raises((ValueError, KeyError)):
        retention.rm(context(), prefix)
    assert retention.ls(context()) == [{"prefix": "", "keep_versions": 10, "keep_days": 7.0, "default": True}]


def test_only_an_admin_collects_or_sets_rules(localtailr_home, monkeypatch):
    User.add("bob", "B", "C", "b@example.com", "pw")
    monkeypatch.setenv("LOCALTAILR_USER", "bob")
    with pytest.raises(localtailr.PermissionError):
        blob_gc.collect(context())
    with pytest.raises(localtailr.PermissionError):
        retention.set_rule(context(), "", keep_versions=1)


def test_a_deleted_blob_is_freed_after_its_days_and_its_name_freed(localtailr_home, monkeypatch):
    home = localtailr_home.home
    User.add("bob", "B", "C", "b@example.com", "pw")
    Blob().put("gone", b"x" * 1000)
    Blob().put("gone", b"y" * 1000)
    Blob().delete("gone")
    blob_gc.collect(context(), now=time.time() + DAY)
    assert len(Blob().history("gone")) == 3  # restorable for 7 days
    report = blob_gc.collect(context(), now=time.time() + 8 * DAY)
    assert report["versions_dropped"] == 3 and report["object_bytes"] == 2000 and objects(home) == []
    monkeypatch.setenv("LOCALTAILR_USER", "bob")
    Blob().put("gone", b"bob's now")  # no history, no ACL left: a new name
    assert Blob().get("gone") == b"bob's now"


def test_partial_files_only_when_stale(localtailr_home):
    home = localtailr_home.home
    tmp = home.blobs / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    old = time.time() - 2 * blob_gc.GRACE
    files = {"dead-old": f"{dead}-a.part", "dead-young": f"{dead}-b.part",
             "live-old": f"{os.getpid()}-c.part", "unnamed-old": "0123abcd.part"}
    for key, name in files.items():
        (tmp / name).write_bytes(b"z" * 100)
        if key.endswith("old"):
            os.utime(tmp / name, (old, old))
    report = blob_gc.collect(context())
    assert report["partials_removed"] == 2 and report["partial_bytes"] == 200
    assert parts(home) == sorted([files["dead-young"], files["live-old"]])
    ancient = time.time() - 2 * blob_gc.ABANDONED
    os.utime(tmp / files["live-old"], (ancient, ancient))
    blob_gc.collect(context())
    assert parts(home) == [files["dead-young"]]


KILLED_PUT = textwrap.dedent("""
    import sys
    from localtailr import Blob
    def chunks():
        yield b"x" * (1 << 20)
        print("writing", flush=True)
        sys.stdin.read()
    from localtailr.platform import blob
    from localtailr.platform.context import context
    blob.put(context(), "big", chunks())
""")


def test_a_killed_put_leaves_a_part_that_is_collected(localtailr_home):
    home = localtailr_home.home
    env = {**os.environ, "LOCALTAILR_HOME": str(localtailr_home.root)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_PUT], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    assert blob_gc.collect(context(), grace=0)["partials_removed"] == 0  # its writer is alive
    proc.kill()
    proc.wait(timeout=30)
    assert len(parts(home)) == 1
    report = blob_gc.collect(context(), grace=0)
    assert report["partials_removed"] == 1 and report["partial_bytes"] == 1 << 20 and parts(home) == []
    assert not Blob().exists("big")


@pytest.mark.slow
def test_the_daemon_collects(localtailr_home, monkeypatch):
    home = localtailr_home.home
    monkeypatch.setenv("LOCALTAILR_GC_EVERY", "0.2")
    monkeypatch.setenv("LOCALTAILR_GC_GRACE", "0")
    retention.set_rule(context(), "", keep_versions=1)
    Blob().put("a", b"first")
    Blob().put("a", b"second")
    tmp = home.blobs / "tmp"
    (tmp / "1-stale.part").write_bytes(b"q")  # pid 1 is alive but not ours...
    (tmp / "999999999-stale.part").write_bytes(b"q")  # ...this writer cannot exist
    localtailr_home.start_daemon()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (len(objects(home)) > 1 or "999999999-stale.part" in parts(home)):
            time.sleep(0.1)
        assert len(objects(home)) == 1 and Blob().get("a") == b"second"
        assert parts(home) == ["1-stale.part"]
    finally:
        localtailr_home.stop_daemon()
    log = (home.root / "daemon.log").read_text()
    assert "blob gc:" in log and "objects_removed 1" in log
