"""Issue 2, data: Blob storage — the API, hostile names, streaming, atomic replacement."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.blob_stream import STREAM_CHILD, sha256_of

import localtailr
from localtailr import ACL, Blob, User


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# --- the API ------------------------------------------------------------------------


def test_put_get_bytes_and_str(localtailr_home):
    blob = Blob()
    blob.put_blob("greeting", b"Hello, world!")
    assert blob.get_blob("greeting") == b"Hello, world!"
    blob.put_blob("text.txt", "héllo")
    assert blob.get_blob("text.txt") == "héllo".encode()
    blob.put("alias/bytes", b"\x00\xff")  # the published SDK's names
    assert blob.get("alias/bytes") == b"\x00\xff"
    blob.put_blob("empty", b"")
    assert blob.get_blob("empty") == b""


def test_put_file_get_file(localtailr_home, tmp_path):
    src = tmp_path / "in.bin"
    data = os.urandom(3 * (1 << 20) + 17)
    src.write_bytes(data)
    Blob().put_file("data/in.bin", src)
    out = tmp_path / "out.bin"
    Blob().get_file("data/in.bin", out)
    assert out.read_bytes() == data
    Blob().get_file("data/in.bin", str(out))  # overwrites, str path
    assert out.read_bytes() == data
    with pytest.raises(ValueError, match="not a file"):
        Blob().put_file("x", tmp_path / "missing")
    with pytest.raises(ValueError, match="does not exist"):
        Blob().get_file("data/in.bin", tmp_path / "no" / "such" / "dir" / "f")


def test_size_and_sha256_are_recorded(localtailr_home):
    data = os.urandom(100_000)
    Blob().put_blob("r.bin", data)
    info = Blob().stat("r.bin")
    assert info["size"] == len(data) and info["sha256"] == hashlib.sha256(data).hexdigest()
    conn = localtailr.store.connection(localtailr_home.home)
    row = conn.execute("SELECT size, sha256 FROM blobs WHERE name = 'r.bin'").fetchone()
    assert tuple(row) == (len(data), hashlib.sha256(data).hexdigest())


def test_ls_exists_delete(localtailr_home):
    blob = Blob()
    for name in ("reports/2026/q1.csv", "reports/2026/q2.csv", "reports/summary.txt",
                 "reportsX/other", "top"):
        blob.put_blob(name, name)
    assert blob.ls("") == ["reports/2026/q1.csv", "reports/2026/q2.csv", "reports/summary.txt",
                           "reportsX/other", "top"]
    assert blob.ls("reports") == ["reports/2026/q1.csv", "reports/2026/q2.csv", "reports/summary.txt"]
    assert blob.ls("reports/") == blob.ls("reports")
    assert blob.ls("reports/2026") == ["reports/2026/q1.csv", "reports/2026/q2.csv"]
    assert blob.ls("nothing") == []
    assert blob.exists("top") and not blob.exists("reports")
    blob.delete("top")
    assert not blob.exists("top")
    with pytest.raises(KeyError) as info:
        blob.get_blob("top")
    assert isinstance(info.value, RuntimeError)
    for call in (lambda: blob.delete("top"), lambda: blob.get_file("top", "/tmp/x"),
                 lambda: blob.stat("top")):
        with pytest.raises(RuntimeError):
            call()


def test_replace_keeps_one_object_per_content(localtailr_home):
    Blob().put_blob("a", b"one")
    Blob().put_blob("b", b"one")  # same content, shared object
    Blob().put_blob("a", b"two")
    assert Blob().get_blob("a") == b"two" and Blob().get_blob("b") == b"one"
    Blob().delete("b")
    assert Blob().get_blob("a") == b"two"


def test_per_blob_acl(localtailr_home, monkeypatch):
    User.add("alice", "A", "B", "a@example.com", "pw")
    Blob().put_blob("shared.txt", b"x", ACL(read=["alice"], write=["root"]))
    Blob().put_blob("secret.txt", b"y")
    monkeypatch.setenv("LOCALTAILR_USER", "alice")
    assert Blob().ls() == ["shared.txt"]
    assert Blob().get_blob("shared.txt") == b"x"
    with pytest.raises(localtailr.PermissionError):
        Blob().get_blob("secret.txt")
    with pytest.raises(localtailr.PermissionError):
        Blob().put_blob("shared.txt", b"mine now")
    Blob().put_blob("alice/own.txt", b"z")  # a new name: alice becomes its owner
    assert Blob().get_acl("alice/own.txt").to_dict()["write"] == [User.get("alice").user_id]


# --- hostile names --------------------------------------------------------------------

HOSTILE = ["..", "a/../b", "/etc/passwd", "a\\b", "a\x00b", "a//b", "a/", "", ".", "./a",
           "x" * 1025, "../outside", "a/..", "/", "a/./b", "..\\..\\x", "\n", "a\tb", "a\x7fb", "a\ud800"]


@pytest.mark.parametrize("name", HOSTILE, ids=[repr(n)[:30] for n in HOSTILE])
def test_hostile_names_are_refused_and_nothing_is_written(localtailr_home, tmp_path, name):
    home = localtailr_home.home
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    Blob().ls()  # the database files exist from here on
    before = tree(tmp_path)
    for call in (lambda: Blob().put_blob(name, b"payload"), lambda: Blob().put(name, "payload"),
                 lambda: Blob().put_file(name, src), lambda: Blob().get_blob(name),
                 lambda: Blob().get_file(name, tmp_path / "out"), lambda: Blob().exists(name),
                 lambda: Blob().delete(name)):
        with pytest.raises(ValueError, match="invalid blob name"):
            call()
    assert tree(tmp_path) == before
    assert Blob().ls() == []
    assert [p for p in home.blobs.rglob("*") if p.is_file()] == []


def test_non_string_names_are_refused(localtailr_home):
    for name in (None, 5, b"a", Path("a")):
        with pytest.raises(ValueError):
            Blob().put_blob(name, b"x")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(st.characters(exclude_categories=()), min_size=0, max_size=80)
       | st.lists(st.sampled_from(["a", "..", ".", "", "b c", "\\", "\x00", "é"]), max_size=6).map("/".join))
def test_any_text_name_is_refused_or_round_trips_inside_the_blob_folder(localtailr_home, tmp_path, name):
    home = localtailr_home.home
    Blob().ls()
    outside_before = tree(tmp_path) - {p for p in tree(tmp_path) if "localtailr-home/blobs" in p}
    payload = ("content of " + name).encode("utf-8", "surrogatepass")
    try:
        Blob().put_blob(name, payload)
    except ValueError as exc:
        assert "invalid blob name" in str(exc) and not _valid(name)
    else:
        assert Blob().get_blob(name) == payload
        assert name in Blob().ls()
        Blob().delete(name)
    outside_after = tree(tmp_path) - {p for p in tree(tmp_path) if "localtailr-home/blobs" in p}
    assert outside_after == outside_before
    for p in home.blobs.rglob("*"):
        assert p.resolve().is_relative_to(home.blobs.resolve())


def _valid(name: str) -> bool:
    try:
        localtailr.platform.blob.validate_name(name)
        return True
    except ValueError:
        return False


# --- streaming and atomicity (real processes) --------------------------------------------



@pytest.mark.slow
def test_large_file_streams_with_flat_memory(localtailr_home, tmp_path):
    size = 300 << 20
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:  # sparse but with data at a few places
        for offset in (0, size // 3, size - 4096):
            f.seek(offset)
            f.write(os.urandom(4096))
        f.truncate(size)
    dst = tmp_path / "back.bin"
    result = subprocess.run([sys.executable, "-c", STREAM_CHILD, str(src), str(dst)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    growth = figures["peak"] - figures["base"]
    assert growth < 50 << 20, f"peak RSS grew by {growth >> 20} MiB for a {size >> 20} MiB file"
    assert dst.stat().st_size == size
    assert sha256_of(dst) == sha256_of(src) == Blob().stat("big/file.bin")["sha256"]




WRITER = textwrap.dedent("""
    import sys
    from localtailr import Blob
    a, b = (bytes([65 + i]) * (1 << 18) + b"end" for i in (0, 1))
    for i in range(int(sys.argv[1])):
        Blob().put_blob("shared/blob", a if i % 2 else b)
""")

READER = textwrap.dedent("""
    import hashlib, json, sys
    from localtailr import Blob
    seen = {}
    for _ in range(int(sys.argv[1])):
        data = Blob().get_blob("shared/blob")
        key = hashlib.sha256(data).hexdigest()
        seen[key] = seen.get(key, 0) + 1
    print(json.dumps(seen))
""")


def test_reader_never_sees_half_a_blob(localtailr_home):
    a, b = (bytes([65 + i]) * (1 << 18) + b"end" for i in (0, 1))
    whole = {hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest()}
    Blob().put_blob("shared/blob", a)
    env = {**os.environ}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, "150"], env=env) for _ in range(2)]
    readers = [subprocess.Popen([sys.executable, "-c", READER, "300"], env=env,
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    for w in writers:
        assert w.wait(timeout=300) == 0
    for r in readers:
        out, _ = r.communicate(timeout=300)
        assert r.returncode == 0
        seen = json.loads(out)
        assert set(seen) <= whole, "a reader saw content that is neither whole version"
        assert sum(seen.values()) == 300
    assert hashlib.sha256(Blob().get_blob("shared/blob")).hexdigest() in whole


# --- content already stored ----------------------------------------------------------------


@pytest.mark.parametrize("how", ["file", "bytes"])
def test_put_of_stored_content_writes_no_new_object(localtailr_home, tmp_path, how):
    """A put of bytes already stored keeps the stored object (same inode): the copy made
    while hashing is dropped, not renamed over it, and leaves no temporary file."""
    data = os.urandom((1 << 20) + 5)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    blob = Blob()
    blob.put_blob("first", data)
    obj = localtailr_home.home.blobs / "objects" / hashlib.sha256(data).hexdigest()[:2]
    (path,) = obj.iterdir()
    inode = path.stat().st_ino
    if how == "file":
        blob.put_file("second", str(src))
    else:
        blob.put_blob("second", data)
    assert path.stat().st_ino == inode
    assert list((localtailr_home.home.blobs / "tmp").iterdir()) == []
    assert blob.get_blob("second") == data
    blob.delete("first")  # the object is still named by "second"
    assert blob.get_blob("second") == data
