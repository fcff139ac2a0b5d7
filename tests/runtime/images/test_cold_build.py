"""A new environment for ``localtailr run``: uv starts before the store is even imported,
the build record is written while it installs, bytecode is compiled by a detached process
once the environment is in place (or here), and an offline uv reads no certificates."""

import importlib.util
import json
import os
import py_compile
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from support.images_support import home, offline  # noqa: F401 (fixtures)
from support.runtime_support import wait_for

from localtailr import store
from localtailr.core.errors import ImageBuildError
from localtailr.core.image_spec import ImageSpec
from localtailr.runtime.images import bytecode, cache, child
from localtailr.runtime.images.cache import ensure_image

QUIET = [].append


def _pyc(built, module="six"):
    [site] = built.path.glob("lib/python*/site-packages")
    return site / "__pycache__" / f"{module}.{sys.implementation.cache_tag}.pyc"


def test_compiled_file_is_what_py_compile_writes(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text("X = 1\n\ndef f(y):\n    return [X + i for i in range(y)]\n")
    assert bytecode.compile_file(str(source))
    ours = _read_and_remove(importlib.util.cache_from_source(str(source)))
    py_compile.compile(str(source))
    assert ours == _read_and_remove(importlib.util.cache_from_source(str(source)))
    (tmp_path / "py2.py").write_text("print 'python 2'\n")
    assert bytecode.compile_tree(str(tmp_path)) == 1  # the one that compiles


def _read_and_remove(path):
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    return data


def test_a_script_run_builds_with_compile_later_leaving_no_child(home, offline):  # noqa: F811
    """The detached compiler is no child of this process (nothing for the script this
    process becomes to reap), and the bytecode it writes is the valid one."""
    before = {p.pid for p in psutil.Process().children()}
    built = ensure_image(home, ImageSpec.make(python_requirements="six!=0.101"),
                         progress=QUIET, compile_later=True)
    assert {p.pid for p in psutil.Process().children()} == before
    assert "detached process" in built.log_path.read_text()
    pyc = wait_for(lambda: _pyc(built).exists() and _pyc(built), 60, "six's bytecode")
    mtime = pyc.stat().st_mtime_ns
    out = subprocess.run([built.python, "-c", "import six; print(six.__cached__)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(pyc) and pyc.stat().st_mtime_ns == mtime  # valid: not rewritten


def test_a_threaded_caller_compiles_before_returning(home, offline):  # noqa: F811
    import threading

    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        built = ensure_image(home, ImageSpec.make(python_requirements="six!=0.102"),
                             progress=QUIET, compile_later=True)
        assert _pyc(built).exists()  # no fork with another thread running: compiled here
    finally:
        stop.set()
        other.join()


SPAWN_PROBE = textwrap.dedent("""
    import json, sys
    from localtailr.core.home import Home
    from localtailr.runtime.images import child
    seen = []
    real = child.spawn
    def spawn(argv, env, output):
        seen.append({"modules": sorted(sys.modules), "ssl": "SSL_CERT_FILE" in env})
        return real(argv, env, output)
    child.spawn = spawn
    from localtailr.runtime.process.script_run import prepare_script
    launch = prepare_script(Home.current(), sys.argv[1], progress=lambda line: None)
    print(json.dumps({"spawns": seen, "key": launch.image.key}))
""")


def test_uv_starts_before_the_store_and_heavy_modules_are_imported(home, offline, tmp_path):  # noqa: F811
    """One uv process a new environment, started with none of subprocess, the store
    (sqlite3), tomllib, py_compile, hashlib or typing imported, and without the certificate
    variables (offline); the build is recorded all the same."""
    script = tmp_path / "s.py"
    script.write_text('# /// script\n# dependencies = ["six!=0.103"]\n# ///\nimport six\n')
    env = {**os.environ, "LOCALTAILR_HOME": str(home.root),
           "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}
    out = subprocess.run([sys.executable, "-c", SPAWN_PROBE, str(script)], env=env,
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    [spawn] = result["spawns"]
    heavy = {"subprocess", "sqlite3", "localtailr.store", "tomllib", "py_compile", "hashlib",
             "typing"}
    assert heavy & set(spawn["modules"]) == set()
    assert spawn["ssl"] is False
    row = store.connection(home).execute("SELECT state FROM images WHERE key = ?",
                                         (result["key"],)).fetchone()
    assert row["state"] == "ready"


def test_a_failure_while_uv_runs_stops_it_and_leaves_nothing(home, offline, monkeypatch):  # noqa: F811
    """The build record is written while uv installs: if that fails, uv is killed before
    the folder it installs into is removed, and the build fails with the record's error."""
    started = []
    real_spawn = child.spawn
    monkeypatch.setattr(child, "spawn", lambda *a: started.append(real_spawn(*a)) or started[-1])
    real_record = cache._record

    def record(home_, key, interp, spec, state, size=None):
        if state == "building":
            raise OSError("disk gone")
        return real_record(home_, key, interp, spec, state, size)

    monkeypatch.setattr(cache, "_record", record)
    with pytest.raises(OSError, match="disk gone"):
        ensure_image(home, ImageSpec.make(python_requirements="six!=0.104"), progress=QUIET)
    [pid] = started
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert [p.name for p in home.venvs.iterdir() if p.name.startswith(".tmp-")] == []


def test_uv_that_cannot_start_says_so(home, offline, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setattr(cache, "find_uv", lambda: str(tmp_path / "no-uv"))
    with pytest.raises(Exception, match="cannot start .*no-uv"):
        ensure_image(home, ImageSpec.make(python_requirements="six!=0.105"), progress=QUIET)


def _compilers(since: float) -> list[psutil.Process]:
    """Processes forked from this one since ``since`` (same command line) still running."""
    me = psutil.Process()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "create_time", "status"]):
        info = proc.info
        if (info["pid"] != me.pid and info["cmdline"] == me.cmdline()
                and info["create_time"] >= since - 1 and info["status"] != psutil.STATUS_ZOMBIE):
            found.append(proc)
    return found


def test_a_failed_build_lets_the_waiting_compiler_go(home, offline):  # noqa: F811
    """The compiler forked while uv installs waits for a folder; when the install fails it
    is told so and ends, compiling nothing."""
    started = time.time()
    with pytest.raises(ImageBuildError, match="package no-such-package-here is not available"):
        ensure_image(home, ImageSpec.make(python_requirements=["six", "no-such-package-here"]),
                     progress=QUIET, compile_later=True)
    wait_for(lambda: not _compilers(started), 30, "the compiler to end")
