"""Audit of issue 2 (Foundation): the points no other test showed."""

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from support.blob_stream import STREAM_CHILD
from support.blob_stream import sha256_of as _sha

import localtailr
from localtailr import ACL, KV, Blob, Group, Secrets, User
from localtailr.platform import blob as blob_ops
from localtailr.platform import groups as group_ops
from localtailr.platform import kv as kv_ops
from localtailr.platform import users as user_ops
from localtailr.platform.context import context

ROOT = Path(__file__).resolve().parent.parent
LOCALTAILR = str(Path(sys.executable).with_name("localtailr"))
SECRET = "Audit-Secret-Value-93c1e"


# --- project ---------------------------------------------------------------------------


def test_pyproject_declares_the_package_script_dependencies_and_plugin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "localtailr"
    assert project["scripts"]["localtailr"] == "localtailr.cli.fast:main"
    names = {re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert {"watchdog", "croniter", "psutil", "cryptography", "virtualenv", "flask"} <= names
    # no declared dependency goes unused: each is imported (or run with -m) by the package
    sources = "\n".join(p.read_text() for p in (ROOT / "localtailr").rglob("*.py"))
    for name in names:
        module = name.replace("-", "_")
        assert re.search(rf"(^|\s)(import|from) {module}\b|\"-m\", \"{module}\"", sources, re.M), name
    assert "test" in project["optional-dependencies"]
    assert project["entry-points"]["pytest11"] == {"localtailr": "localtailr.pytest_plugin"}
    # and installed: pytest finds the plugin through the entry point
    found = [ep for ep in metadata.entry_points(group="pytest11") if ep.name == "localtailr"]
    assert [ep.value for ep in found] == ["localtailr.pytest_plugin"]


def test_layout_ci_makefile_and_sandbox():
    assert (ROOT / "README.md").is_file() and any((ROOT / "examples").iterdir())
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK) and "make test" in ci.read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("test:", "run:", "bench:"):
        assert re.search(rf"^{target}", makefile, re.M), target
    assert "-m venv $(VENV)" in makefile  # make creates .venv itself
    for folder in ("platform", "sdk", "runtime", "web", "cli"):
        assert (ROOT / "localtailr" / folder / "__init__.py").is_file()
    readme = (ROOT / "sandbox" / "README.md").read_text()
    for part in ("state.db", "blobs/", "venvs/", "runs/"):
        assert part in readme, part
    ignored = subprocess.run(["git", "check-ignore", "sandbox/state.db", "sandbox/blobs/x"],
                             cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout.split() == ["sandbox/state.db", "sandbox/blobs/x"]
    kept = subprocess.run(["git", "check-ignore", "sandbox/README.md"], cwd=ROOT)
    assert kept.returncode == 1  # the README is tracked


def test_demo_seed_makes_two_users_a_group_keys_a_secret_and_a_blob(localtailr_home):
    from localtailr.demo import seed

    seed()
    seed()  # twice is harmless
    assert len([u for u in User.ls() if u.name != "root"]) == 2
    assert [g.name for g in Group.ls() if g.name != "admin"] == ["analysts"]
    assert len(KV().ls()) >= 2 and [e["key"] for e in Secrets().ls()] == ["warehouse_password"]
    assert Blob().ls() != []


# --- home ----------------------------------------------------------------------------------


def test_default_home_is_dot_localtailr_created_private(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LOCALTAILR_HOME"}
    env["HOME"] = str(tmp_path)
    done = subprocess.run([LOCALTAILR, "init", "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    home = tmp_path / ".localtailr"
    assert json.loads(done.stdout)["home"] == str(home)
    assert (home.stat().st_mode & 0o777) == 0o700 and (home / "state.db").exists()


# --- the service layer ----------------------------------------------------------------------

WRITES = re.compile(r"INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
                    r"store\.(transaction|write)\b|\.executescript\(", re.I)


def test_the_faces_never_write_the_store_themselves():
    faces = [p for d in ("sdk", "cli", "web") for p in (ROOT / "localtailr" / d).rglob("*.py")]
    assert faces
    offenders = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in faces
                 for m in WRITES.finditer(p.read_text())]
    assert offenders == []


def test_operations_return_plain_json_data(localtailr_home, tmp_path):
    ctx = context()
    src = tmp_path / "f.txt"
    src.write_text("x")
    results = [
        user_ops.add(ctx, "alice", "A", "B", "a@example.com", None), user_ops.get(ctx, "alice"),
        user_ops.ls(ctx), user_ops.exists(ctx, "alice"),
        group_ops.add(ctx, "g"), group_ops.add_users(ctx, "g", ["alice"]), group_ops.ls(ctx),
        group_ops.is_member(ctx, "g", "alice"),
        kv_ops.put(ctx, "k", "v"), kv_ops.get(ctx, "k"), kv_ops.ls(ctx), kv_ops.acls(ctx, "k"),
        kv_ops.set_acls(ctx, "k", {"read": [0]}),
        kv_ops.put(ctx, "s", SECRET, kind=kv_ops.SECRETS), kv_ops.ls(ctx, kv_ops.SECRETS),
        blob_ops.put_file(ctx, "b/f.txt", src), blob_ops.stat(ctx, "b/f.txt"), blob_ops.ls(ctx),
        blob_ops.exists(ctx, "b/f.txt"), blob_ops.get_acl(ctx, "b/f.txt"),
    ]
    for result in results:
        assert json.loads(json.dumps(result)) == result, result


# --- secrets -------------------------------------------------------------------------------


@pytest.fixture
def bob_may_write_the_secret(localtailr_home):
    User.add("bob", "B", "C", "b@example.com", "pw")
    Secrets().put("token", SECRET, ACL(read=["bob", "root"], write=["bob", "root"]))
    return localtailr_home


def test_a_write_holder_may_put_and_delete_a_secret(bob_may_write_the_secret, monkeypatch):
    monkeypatch.setenv("LOCALTAILR_USER", "bob")  # not an admin
    Secrets().put("token", "by bob")
    assert Secrets().get("token") == "by bob"
    Secrets().delete("token")
    monkeypatch.delenv("LOCALTAILR_USER")
    assert Secrets().ls() == []


def _read_until(fd: int, wanted: str, timeout: float = 30) -> str:
    seen, deadline = "", time.monotonic() + timeout
    while wanted not in seen:
        assert time.monotonic() < deadline, f"waited for {wanted!r}, saw {seen!r}"
        if select.select([fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            seen += chunk.decode(errors="replace")
    return seen


def test_cli_reads_a_secret_from_a_hidden_prompt(localtailr_home):
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI on a terminal
        os.environ["LOCALTAILR_HOME"] = str(localtailr_home.root)
        os.execv(LOCALTAILR, [LOCALTAILR, "secret", "put", "token"])
    shown = _read_until(fd, ":")
    os.write(fd, (SECRET + "\n").encode())
    shown += _read_until(fd, ":")  # the confirmation
    os.write(fd, (SECRET + "\n").encode())
    _, status = os.waitpid(pid, 0)
    try:
        while select.select([fd], [], [], 0.2)[0]:
            shown += os.read(fd, 4096).decode(errors="replace")
    except OSError:
        pass
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, shown
    assert SECRET not in shown  # not echoed
    assert Secrets().get("token") == SECRET


def test_a_secret_is_in_no_file_of_the_home_nor_any_output(localtailr_home, tmp_path):
    home = localtailr_home.home
    env = {**os.environ, "LOCALTAILR_HOME": str(home.root)}

    def cli(*args, input=None):
        return subprocess.run([LOCALTAILR, *args], input=input, env=env, capture_output=True,
                              text=True, timeout=60)

    outputs = [cli("user", "add", "eve"), cli("secret", "put", "token", input=SECRET),
               cli("secret", "ls"), cli("secret", "ls", "--json"), cli("secret", "acls", "token"),
               cli("--as", "eve", "secret", "get", "token"), cli("secret", "rotate-key"),
               cli("kv", "ls", "--secure", "--json"), cli("info", "--json")]
    assert outputs[-4].returncode == 1  # eve was refused
    for done in outputs:
        assert SECRET not in done.stdout + done.stderr
    localtailr.store.connection(home).execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in home.root.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert cli("secret", "get", "token").stdout.strip() == SECRET  # still there


# --- blobs --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_2_gib_file_goes_through_with_flat_memory(localtailr_home, tmp_path):
    size = 2 << 30
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        for offset in (0, size // 2, size - 4096):
            f.seek(offset)
            f.write(os.urandom(4096))
        f.truncate(size)
    dst = tmp_path / "back.bin"
    try:
        done = subprocess.run([sys.executable, "-c", STREAM_CHILD, str(src), str(dst)],
                              capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, done.stderr
        figures = json.loads(done.stdout)
        growth = figures["peak"] - figures["base"]
        assert growth < 50 << 20, f"peak RSS grew by {growth >> 20} MiB for 2 GiB"
        assert dst.stat().st_size == size
        assert _sha(dst) == Blob().stat("big/file.bin")["sha256"] == _sha(src)
    finally:
        for p in (src, dst):
            p.unlink(missing_ok=True)
        if Blob().exists("big/file.bin"):
            Blob().delete("big/file.bin")
