"""``localtailr kv get|put`` answered without click (``cli.fast``): the same output, exit
codes and errors as the full command line, and anything else left to it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.imports import HEAVY, baseline, imported

from localtailr.cli import fast

LOCALTAILR = str(Path(sys.executable).with_name("localtailr"))


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([LOCALTAILR, *args], capture_output=True, text=True, input=stdin,
                          env=os.environ.copy(), timeout=60)


def full(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The same command through click (cli.main), for comparison."""
    code = "import sys; from localtailr.cli.main import main; sys.argv[0] = 'localtailr'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          input=stdin, env=os.environ.copy(), timeout=60)


def test_fast_commands_match_the_full_command_line(localtailr_home):
    localtailr_home.home.ensure()
    said = "stored db url in pre; ACL: read: user:root; write: user:root; operate: user:root;" \
        " access: user:root; promote: user:root\n"
    for run in (cli, full):
        put = run("kv", "put", "db url", "post gres://x", "--env", "pre")
        assert (put.returncode, put.stdout, put.stderr) == (0, said, "")
    for args in (("kv", "get", "db url", "--env", "pre"), ("kv", "get", "--json", "db url", "--env", "pre"),
                 ("kv", "get", "db url"), ("kv", "get", "db url", "--env", "staging"),
                 ("kv", "put", "bad\nkey", "v"), ("kv", "get", "db url", "--env", "pre", "--as", "nobody")):
        a, b = cli(*args), full(*args)
        assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), args
    assert cli("kv", "get", "db url", "--env", "pre").stdout == "post gres://x\n"
    assert cli("kv", "get", "db url").returncode == 1  # not in dev: the full path's error


def test_fast_path_does_not_import_click(localtailr_home):
    localtailr_home.home.ensure()
    assert cli("kv", "put", "k", "v").returncode == 0
    code = ("import sys; from localtailr.cli import fast; sys.argv = ['localtailr', 'kv', 'get', 'k'];"
            " fast.main(); print('click' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=os.environ.copy()).stdout
    assert out == "v\nFalse\n"


def test_kv_get_imports_only_what_it_needs(localtailr_home, tmp_path):
    """``localtailr kv get`` reads the key without the store, pathlib, sqlite3's Python
    part or click: what they cost is most of the command's start (issue 12's goal)."""
    localtailr_home.home.ensure()
    assert cli("kv", "put", "k", "v").returncode == 0
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for args in (("kv", "get", "k"), ("kv", "get", "k", "--as", "root", "--env", "DEV"),
                 ("kv", "get", "k", "--home", str(localtailr_home.root))):
        proc, names = imported([LOCALTAILR, *args], env)
        assert (proc.returncode, proc.stdout) == (0, "v\n"), proc.stderr
        assert [m for m in HEAVY if m in names] == [], args
        extra = [m for m in names if m not in baseline(env)]
        assert len(extra) <= 22, extra  # the package's few modules and _sqlite3's functools
    proc, names = imported([LOCALTAILR, "kv", "get", "missing"], env)  # an error: the full way
    assert proc.returncode == 1 and "click" in names and "not found" in proc.stderr


def test_kv_get_as_another_user_goes_the_full_way_when_denied(localtailr_home):
    localtailr_home.home.ensure()
    assert cli("user", "add", "ann").returncode == 0
    assert cli("kv", "put", "k", "v").returncode == 0  # root's alone
    a, b = cli("kv", "get", "k", "--as", "ann"), full("kv", "get", "k", "--as", "ann")
    assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr)
    assert a.returncode == 1 and "ann" in a.stderr
    assert cli("kv", "put", "k", "v", "--read", "ann").returncode == 0
    assert cli("kv", "get", "k", "--as", "ann").stdout == "v\n"


@pytest.mark.parametrize("argv", [
    ["kv", "get"], ["kv", "get", "a", "b"], ["kv", "get", "a", "--secure"], ["kv", "put", "a"],
    ["kv", "put", "a", "b", "--read", "x"], ["kv", "ls"], ["blob", "get", "a"], ["--json", "kv", "get", "a"],
    ["kv", "get", "a", "--env"], ["kv", "get", "a", "--env", "dev", "--env", "pre"], ["kv", "get", "--help"],
])
def test_anything_else_is_left_to_the_full_command_line(argv):
    assert fast.parse(argv) is None


def test_parse_reads_options_anywhere():
    assert fast.parse(["kv", "get", "--as", "ann", "k", "--json", "--home", "/h"]) == (
        "get", ["k"], {"as_json": True, "user": "ann", "home": "/h"})
    assert fast.parse(["kv", "put", "k", "v", "--env", "pre"]) == (
        "put", ["k", "v"], {"as_json": False, "environment": "pre"})


def test_run_script_fast_matches_the_full_command_line(localtailr_home, tmp_path):
    """``localtailr run SCRIPT ARGS`` without options: the script's output, arguments and
    exit code, as through click; a missing script is the full path's error."""
    localtailr_home.home.ensure()
    script = tmp_path / "show.py"
    script.write_text("import os, sys\nprint(sys.argv[1:], os.environ['LOCALTAILR_USER'],"
                      " os.environ['DATATAILR_JOB_ENVIRONMENT'])\nsys.exit(3)\n")
    assert full("run", str(script)).returncode == 3  # builds its environment (quietly: piped)
    for args in (("run", str(script), "a", "b c"), ("run", str(tmp_path / "missing.py"))):
        a, b = cli(*args), full(*args)
        assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), args
    assert cli("run", str(script), "a").stdout == "['a'] root dev\n"
    assert cli("run", str(script), "a").returncode == 3
    assert fast.run_script(["run", str(script), "--param", "k=v"]) is False  # options: click's


def test_cached_run_finds_its_environment_without_the_image_machinery(localtailr_home, tmp_path):
    """A cached ``localtailr run`` as root, with no secrets, reaches exec having imported
    neither the image cache (builder, subprocess, dataclasses, tomllib) nor the store."""
    localtailr_home.home.ensure()
    script = tmp_path / "hello.py"
    script.write_text("# requirements:\nprint('hello')\n")
    assert cli("run", str(script)).stdout == "hello\n"  # builds and remembers its environment
    heavy = ["localtailr.runtime.images.cache", "localtailr.store", "sqlite3", "dataclasses",
             "subprocess", "tomllib", "packaging", "click", "hashlib", "typing"]
    code = ("import os, sys; from localtailr.cli import fast\n"
            "def execve(path, argv, env):\n"
            f"    print([m for m in {heavy!r} if m in sys.modules], argv[1:],"
            " env['LOCALTAILR_USER'], env['DATATAILR_JOB_ENVIRONMENT']); sys.exit(0)\n"
            f"os.execve = execve; fast.run_script(['run', {str(script)!r}, 'x'])\n")
    env = {k: v for k, v in os.environ.items() if k != "LOCALTAILR_USER"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env, "DATATAILR_JOB_ENVIRONMENT": "pre"}, timeout=60)
    assert out.stdout == f"[] [{str(script)!r}, 'x'] root pre\n", out.stderr


def test_run_fast_path_secrets_and_users_match_the_full_command_line(localtailr_home, tmp_path,
                                                                    monkeypatch):
    """Through the fast path: root gets the secrets its header names (the store is read
    then); another user is checked as the full command line checks them."""
    localtailr_home.home.ensure()
    script = tmp_path / "secret.py"
    script.write_text("# secrets: api_token\nimport os\nprint(os.environ['api_token'],"
                      " os.environ['LOCALTAILR_USER'])\n")
    assert cli("secret", "put", "api_token", stdin="t0ken").returncode == 0
    assert cli("user", "add", "alice").returncode == 0
    assert full("run", str(script)).stdout == "t0ken root\n"
    for user in ("root", "alice", "nobody"):
        monkeypatch.setenv("LOCALTAILR_USER", user)
        a, b = cli("run", str(script)), full("run", str(script))
        assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), user
        assert a.returncode == (0 if user == "root" else 1), (user, a.stderr)


def test_cold_run_builds_without_packaging_or_dataclasses(localtailr_home, tmp_path):
    """A ``localtailr run`` whose simple requirements are new builds its environment (one uv
    process) without importing packaging or dataclasses (with inspect: ~30 ms together),
    nor subprocess (uv is spawned), tomllib (a simple block), py_compile, hashlib or typing."""
    localtailr_home.home.ensure()
    script = tmp_path / "cold.py"
    script.write_text('# /// script\n# dependencies = ["six>=1.0,<3"]\n# ///\nimport six\n'
                      "print(six.__name__)\n")
    heavy = ["packaging", "dataclasses", "inspect", "subprocess", "tomllib", "py_compile",
             "hashlib", "typing"]
    code = ("import os, sys; from localtailr.cli import fast\n"
            "def execve(path, argv, env):\n"
            f"    print([m for m in {heavy!r} if m in sys.modules],"
            " 'localtailr.runtime.images.cache' in sys.modules); sys.exit(0)\n"
            f"os.execve = execve; fast.run_script(['run', {str(script)!r}])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=240)
    assert out.stdout == "[] True\n", out.stderr  # built (the cache ran), nothing heavy
    assert cli("run", str(script)).stdout == "six\n"
