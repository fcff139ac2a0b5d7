"""Blob history: versions, get/restore/diff of a version, ACLs, content stored once, corruption refused."""

import hashlib
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import localtailr
from localtailr import ACL, Blob, User
from localtailr.platform import blob as blob_ops
from localtailr.platform.blob_objects import CorruptBlobError
from localtailr.platform.context import context
from localtailr.store import MIGRATIONS

HISTORY_MIGRATION = next(m for m in MIGRATIONS if isinstance(m, str) and "CREATE TABLE blob_versions" in m)


def objects(home):
    return sorted(p for p in (home.blobs / "objects").rglob("*") if p.is_file())


def test_every_put_and_delete_is_a_version(localtailr_home, tmp_path):
    b = Blob()
    b.put("r.txt", "one\n")
    b.put("r.txt", "two\n")
    src = tmp_path / "three.txt"
    src.write_text("three\n")
    b.put_file("r.txt", src)
    b.delete("r.txt")
    h = b.history("r.txt")
    assert [v["version"] for v in h] == [1, 2, 3, 4]
    assert [v["deleted"] for v in h] == [False, False, False, True]
    assert h[0]["sha256"] == hashlib.sha256(b"one\n").hexdigest() and h[0]["size"] == 4
    assert h[3]["sha256"] is None and all(v["who"] == "root" for v in h)
    assert b.get("r.txt", version=1) == b"one\n"
    out = tmp_path / "out.txt"
    b.get_file("r.txt", out, version=2)
    assert out.read_text() == "two\n"
    assert not b.exists("r.txt")
    assert b.restore("r.txt", 2) == 5
    assert b.get("r.txt") == b"two\n" and b.history("r.txt")[-1]["version"] == 5
    assert b.diff("r.txt", 1, 3) == "--- r.txt@1\n+++ r.txt@3\n@@ -1 +1 @@\n-one\n+three\n"


@pytest.mark.parametrize("version", [0, -1, "1", 1.0, True])
def test_malformed_versions_are_refused(localtailr_home, version):
    Blob().put("a", b"x")
    for call in (lambda: Blob().get("a", version=version), lambda: Blob().restore("a", version),
                 lambda: Blob().diff("a", 1, version)):
        with pytest.raises(ValueError, match="invalid version"):
            call()


def test_versions_that_do_not_exist(localtailr_home, tmp_path):
    Blob().put("a", b"x")
    Blob().delete("a")
    with pytest.raises(KeyError, match="has no version 9"):
        Blob().get("a", version=9)
    with pytest.raises(KeyError, match="has no version 9"):
        Blob().get_file("a", tmp_path / "o", version=9)
    with pytest.raises(KeyError, match="is a deletion"):
        Blob().get("a", version=2)
    with pytest.raises(ValueError, match="is a deletion"):
        Blob().restore("a", 2)
    with pytest.raises(KeyError, match="no history"):
        Blob().history("never")
    assert not (tmp_path / "o").exists()
    assert len(Blob().history("a")) == 2  # nothing was added by the failures


def test_diff_refuses_binary(localtailr_home):
    Blob().put("bin", b"\xff\xfe")
    Blob().put("bin", b"\xff")
    with pytest.raises(ValueError, match="not UTF-8 text"):
        Blob().diff("bin", 1, 2)


def test_history_has_the_blobs_acl_and_outlives_a_delete(localtailr_home, monkeypatch):
    User.add("alice", "A", "B", "a@example.com", "pw")
    User.add("bob", "B", "C", "b@example.com", "pw")
    Blob().put("shared.txt", b"v1", ACL(read=["alice"], write=["root"]))
    Blob().put("shared.txt", b"v2")
    Blob().delete("shared.txt")
    monkeypatch.setenv("LOCALTAILR_USER", "alice")
    assert [v["version"] for v in Blob().history("shared.txt")] == [1, 2, 3]
    assert Blob().get("shared.txt", version=1) == b"v1"
    with pytest.raises(localtailr.PermissionError, match="WRITE"):
        Blob().restore("shared.txt", 1)
    with pytest.raises(localtailr.PermissionError):
        Blob().put("shared.txt", b"taken")  # a deleted name keeps its ACL
    monkeypatch.setenv("LOCALTAILR_USER", "bob")
    with pytest.raises(localtailr.PermissionError, match="READ"):
        Blob().history("shared.txt")
    with pytest.raises(localtailr.PermissionError, match="READ"):
        Blob().get("shared.txt", version=1)
    monkeypatch.setenv("LOCALTAILR_USER", "root")
    assert len(Blob().history("shared.txt")) == 3  # the refused calls added nothing


def test_unchanged_content_writes_no_new_object(localtailr_home, tmp_path):
    home = localtailr_home.home
    src = tmp_path / "data.bin"
    src.write_bytes(b"a" * 100_000)
    Blob().put_file("d", src)
    first = objects(home)
    stat_before = first[0].stat()
    Blob().put_file("d", src)
    Blob().put("d", b"a" * 100_000)
    with open(src, "rb") as f:
        Blob().put_blob("d", f.read())
    assert objects(home) == first and first[0].stat().st_ino == stat_before.st_ino
    assert [v["version"] for v in Blob().history("d")] == [1, 2, 3, 4]
    assert not list((home.blobs / "tmp").glob("*.part"))
    src.write_bytes(b"b" * 100_000)  # same size, other content
    Blob().put_file("d", src)
    assert len(objects(home)) == 2 and Blob().get("d") == b"b" * 100_000


def test_a_corrupted_object_is_refused_not_served(localtailr_home, tmp_path):
    Blob().put("c.bin", b"good content")
    assert Blob().get("c.bin") == b"good content"  # verified once, stamped
    path = objects(localtailr_home.home)[0]
    path.write_bytes(b"evil content")  # same size, other bytes
    for call in (lambda: Blob().get("c.bin"), lambda: Blob().get_file("c.bin", tmp_path / "o")):
        with pytest.raises(CorruptBlobError, match="c.bin.*corrupt"):
            call()
    assert not (tmp_path / "o").exists()
    assert isinstance(CorruptBlobError("x"), OSError)


def test_a_stamped_object_is_served_without_rehashing(localtailr_home, monkeypatch):
    Blob().put("s", b"x" * 1000)
    Blob().get("s")
    calls = []
    real = blob_ops.open_verified.__globals__["hash_fd"]
    monkeypatch.setitem(blob_ops.open_verified.__globals__, "hash_fd",
                        lambda fd: calls.append(fd) or real(fd))
    assert Blob().get("s") == b"x" * 1000
    assert calls == []


def test_versions_are_numbered_in_the_order_writes_commit(localtailr_home):
    ctx = context()
    for i in range(5):
        assert blob_ops.put(ctx, "n", str(i))["version"] == i + 1
    assert blob_ops.delete(ctx, "n")["version"] == 6
    assert blob_ops.put(ctx, "n", "again")["version"] == 7
    assert blob_ops.stat(ctx, "n")["version"] == 7


def test_a_home_from_before_history_keeps_its_blobs_and_keys_as_first_versions(tmp_path, monkeypatch):
    import sqlite3

    from localtailr import KV, store
    from localtailr.core.home import Home

    home = Home(tmp_path / "old").ensure()
    conn = sqlite3.connect(home.db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    before = store.MIGRATIONS.index(HISTORY_MIGRATION)  # the schema just before history
    store.migrate(conn, before)
    data = b"blob from before history"
    sha = hashlib.sha256(data).hexdigest()
    (home.blobs / "objects" / sha[:2]).mkdir(parents=True)
    (home.blobs / "objects" / sha[:2] / sha[2:]).write_bytes(data)
    conn.execute("INSERT INTO blobs VALUES ('old.bin', ?, ?, 5, 0)", (len(data), sha))
    conn.execute("INSERT INTO kv VALUES ('dev', 'old_key', 'old value', 5, 0)")
    conn.close()
    monkeypatch.setenv("LOCALTAILR_HOME", str(home.root))
    monkeypatch.delenv("LOCALTAILR_USER", raising=False)
    assert Blob().get("old.bin") == data  # opening migrates
    assert [(v["version"], v["sha256"], v["who"]) for v in Blob().history("old.bin")] == [(1, sha, "root")]
    assert [v["value"] for v in KV().history("old_key")] == ["old value"]
    KV().put("old_key", "newer")
    Blob().put("old.bin", b"newer")
    assert Blob().get("old.bin", version=1) == data and KV().get("old_key", version=1) == "old value"
    assert store.schema_version(context().conn) == store.SCHEMA_VERSION
    store.forget(home)


def test_an_unchanged_local_file_is_not_read_again(localtailr_home, tmp_path, monkeypatch):
    src = tmp_path / "settled.bin"
    src.write_bytes(b"s" * 50_000)
    time.sleep(0.2)  # older than a clock tick: its stamp can be trusted
    Blob().put_file("f", src)
    copies = []
    real = blob_ops._copy_and_hash
    monkeypatch.setattr(blob_ops, "_copy_and_hash", lambda *a, **k: copies.append(1) or real(*a, **k))
    Blob().put_file("f", src)
    assert copies == [] and len(Blob().history("f")) == 2
    src.write_bytes(b"t" * 50_000)  # same size, new content: its stamp changed
    Blob().put_file("f", src)
    assert copies == [1] and Blob().get("f") == b"t" * 50_000


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(version=st.one_of(st.integers(-5, 8), st.text(max_size=3), st.floats(allow_nan=True), st.none(),
                         st.booleans()))
def test_any_version_is_served_refused_or_not_found_and_nothing_changes(localtailr_home, version):
    if not Blob().exists("p"):
        for i in range(3):
            Blob().put("p", f"v{i + 1}")
    before = Blob().history("p")
    try:
        data = Blob().get("p", version=version)
    except ValueError as exc:
        assert "invalid version" in str(exc)
        assert not (isinstance(version, int) and not isinstance(version, bool) and version >= 1)
    except KeyError as exc:
        assert "has no version" in str(exc) and isinstance(version, int) and version > 3
    else:
        assert data == (b"v3" if version is None else f"v{version}".encode())
    assert Blob().history("p") == before
