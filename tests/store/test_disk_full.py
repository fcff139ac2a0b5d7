"""Issue 9: a full disk reaches the user as one clear line ("database or disk is full" and
what to do), changes nothing, and the store works again once there is room.

SQLite's ``max_page_count`` gives SQLITE_FULL, the code a full disk gives, on any
machine; as root, a real 4 MiB tmpfs is filled up too."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from localtailr import KV, Secrets, store
from localtailr.core.errors import DiskFullError
from localtailr.web import security
from localtailr.web.app import create_app

LOCALTAILR = str(Path(sys.executable).with_name("localtailr"))
BIG = "x" * 300_000


def assert_clear(message: str, sqlite_full: bool = True) -> None:
    assert ("database or disk is full" if sqlite_full else "the disk is full") in message
    assert "Free some space" in message and "nothing was changed" in message
    assert "no transaction is active" not in message and "Traceback" not in message
    assert len(message.strip().splitlines()) == 1, message


def test_a_full_database_says_so_changes_nothing_and_recovers(localtailr_home):
    kv = KV()
    kv.put("kept", "v1")
    Secrets().put("token", "s3cret")
    conn = store.connection(localtailr_home.home)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # no room for one more page
    for put in (lambda: kv.put("big", BIG), lambda: kv.put("kept", BIG),
                lambda: Secrets().put("token", BIG)):
        with pytest.raises(DiskFullError) as info:
            put()
        assert_clear(str(info.value))
        assert str(localtailr_home.home.root) in str(info.value)
        assert not conn.in_transaction  # rolled back, the connection usable
    assert kv.get("kept") == "v1" and Secrets().get("token") == "s3cret"
    with pytest.raises(KeyError):
        kv.get("big")
    conn.execute("PRAGMA max_page_count = 1073741823")  # room again
    kv.put("big", BIG)
    assert kv.get("big") == BIG and [e["key"] for e in kv.ls()] == ["big", "kept"]


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs, mounted for the test (root only)."""
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        pytest.skip("mounting a small tmpfs needs root (the max_page_count test covers the "
                    "same SQLITE_FULL path)")
    folder = tmp_path / "disk"
    folder.mkdir()
    done = subprocess.run([mount, "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(path: Path) -> None:
    """Write ``path`` until the disk has no room left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def test_a_full_disk_reaches_every_face_as_one_line_and_recovers(small_disk, monkeypatch):
    home_dir = small_disk / "home"
    monkeypatch.setenv("LOCALTAILR_HOME", str(home_dir))
    filler = small_disk / "filler"

    def cli(*args):
        return subprocess.run([LOCALTAILR, *args], capture_output=True, text=True, timeout=120)

    assert cli("kv", "put", "kept", "v1").returncode == 0
    from localtailr.core.home import Home

    home = Home(home_dir)
    client = create_app(home).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {security.token(home)}"
    # 1. No connection open: a new one cannot even make its WAL index.
    fill(filler)
    for args in (("kv", "put", "big", "v"), ("kv", "get", "kept")):
        refused = cli(*args)
        assert refused.returncode == 1 and refused.stderr.startswith("error: ")
        assert_clear(refused.stderr, sqlite_full=False)
    filler.unlink()

    # 2. With a connection open (this process's), reads go on and writes get SQLITE_FULL.
    assert KV().get("kept") == "v1"
    fill(filler)
    refused = cli("kv", "put", "big", BIG[:100_000])  # under the 128 KiB argv limit
    assert refused.returncode == 1 and refused.stderr.startswith("error: ")
    assert_clear(refused.stderr)
    answer = client.post("/api/kv/put", json={"key": "big", "value": BIG})
    assert answer.status_code == 507
    assert_clear(answer.get_json()["error"])
    with pytest.raises(DiskFullError) as info:
        KV().put("big", BIG)
    assert_clear(str(info.value))
    got = cli("kv", "get", "kept")
    assert got.returncode == 0 and got.stdout.strip() == "v1"
    assert cli("kv", "get", "big").returncode == 1  # nothing half written

    # 3. Room again: the same connections and new processes write.
    filler.unlink()
    KV().put("big", BIG)
    assert cli("kv", "put", "later", "v2").returncode == 0
    assert client.post("/api/kv/put", json={"key": "web", "value": "v3"}).status_code == 200
    assert KV().get("big") == BIG
    assert {e["key"] for e in KV().ls()} == {"big", "kept", "later", "web"}
