"""The image cache: real virtualenvs built from the local wheel cache, offline."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from support.images_support import home, offline  # noqa: F401 (fixtures)

from localtailr import store
from localtailr.core.errors import ImageBuildError
from localtailr.core.image_spec import ImageSpec
from localtailr.platform.images import collect as gc
from localtailr.platform.images import image_log, in_use_keys, list_images
from localtailr.runtime.images import interpreters
from localtailr.runtime.images.cache import ensure_image, image_key
from localtailr.runtime.images.interpreters import InterpreterNotFoundError, find_interpreter

QUIET = [].append  # a progress callback that keeps nothing


# -- interpreters --------------------------------------------------------------------


def test_auto_is_the_current_interpreter():
    interp = find_interpreter("auto")
    assert interp.version == ".".join(map(str, sys.version_info[:3]))
    assert os.path.isabs(interp.path) and "shims" not in interp.path
    current_minor = "{}.{}".format(*sys.version_info[:2])
    assert find_interpreter(current_minor).path == interp.path
    assert find_interpreter(">=3.8").path == interp.path


def test_missing_version_warns_or_fails_in_strict_mode(monkeypatch):
    monkeypatch.delenv("LOCALTAILR_STRICT_PYTHON", raising=False)
    interp = find_interpreter("3.99")
    assert interp.path == find_interpreter("auto").path
    assert "3.99" in interp.warning
    monkeypatch.setenv("LOCALTAILR_STRICT_PYTHON", "1")
    with pytest.raises(InterpreterNotFoundError, match="3.99"):
        find_interpreter("3.99")


def test_bad_version_request():
    with pytest.raises(ValueError, match="'banana'.*accepted"):
        find_interpreter("banana")
    with pytest.raises(ValueError, match="python_version"):
        ImageSpec.make(python_version="python3")


def test_pyenv_versions_resolve_to_real_interpreters():
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    others = sorted(p.name for p in root.glob("3.1[0-9].*")
                    if p.name.rsplit(".", 1)[0] != "{}.{}".format(*sys.version_info[:2]))
    if not others:
        pytest.skip("no other pyenv Python on this machine")
    minor = others[-1].rsplit(".", 1)[0]
    interp = find_interpreter(minor)
    assert interp.warning is None
    assert interp.version.startswith(minor + ".")
    assert "shims" not in interp.path and os.path.realpath(interp.path) == interp.path
    assert any(v.startswith(minor + ".") for v in dict(interpreters.candidates(minor)).values())


@pytest.mark.slow
def test_build_with_another_python(home, offline):  # noqa: F811
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    others = sorted(p.name for p in root.glob("3.1[0-9].*")
                    if p.name.rsplit(".", 1)[0] != "{}.{}".format(*sys.version_info[:2]))
    if not others:
        pytest.skip("no other pyenv Python on this machine")
    minor = others[-1].rsplit(".", 1)[0]
    built = ensure_image(home, ImageSpec.make(python_version=minor), progress=QUIET)
    out = subprocess.run([built.python, "-c", "import sys; print(sys.version)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith(minor + ".") and built.python_version.startswith(minor)


# -- keys --------------------------------------------------------------------------


def test_equivalent_specs_share_a_key_and_others_do_not():
    a = ImageSpec.make("auto", "Six, attrs>=20,<30", "# c\nRUN echo hi\n")
    b = ImageSpec.make("auto", ["attrs<30,>=20", "six"], "RUN echo hi")
    c = ImageSpec.make("auto", "six")
    d = ImageSpec.make("auto", "Six, attrs>=20,<30", "RUN echo bye")
    assert image_key(a) == image_key(b)
    assert len({image_key(a), image_key(c), image_key(d)}) == 3


def test_malformed_requirement_is_rejected_before_any_build(home):  # noqa: F811
    with pytest.raises(ValueError, match="'six=='"):
        ImageSpec.make(python_requirements="six==")
    assert not any(home.venvs.glob("*"))


# -- builds ------------------------------------------------------------------------


@pytest.mark.slow
def test_build_hit_pins_and_import_localtailr(home, offline):  # noqa: F811
    lines = []
    spec = ImageSpec.make(
        python_requirements="six, croniter==6.2.4",
        build_script_pre="ENV GREETING=hello\nRUN echo pre > pre.txt",
        build_script_post="ENV FULL=${GREETING}-world",
    )
    built = ensure_image(home, spec, progress=lines.append)
    assert any("installing" in line for line in lines)
    assert built.key == image_key(spec)
    assert built.path == home.venvs / built.key
    assert os.path.isabs(built.python) and Path(built.python).exists()
    assert built.env == {"GREETING": "hello", "FULL": "hello-world"}
    assert (built.path / "pre.txt").read_text().strip() == "pre"
    assert "croniter==6.2.4" in built.log_path.read_text()

    code = textwrap.dedent("""
        import importlib.metadata, json, os, sys
        import six, croniter
        import localtailr
        from localtailr.core.home import Home
        print(json.dumps({
            "croniter": importlib.metadata.version("croniter"),
            "croniter_file": croniter.__file__,
            "localtailr": localtailr.__file__,
            "home": str(Home.current().root),
            "full": os.environ.get("FULL"),
            "prefix": sys.prefix,
        }))
    """)
    out = subprocess.run([built.python, "-c", code], env=built.environ(
        {**os.environ, "LOCALTAILR_HOME": str(home.root)}),
        capture_output=True, text=True, check=True).stdout
    seen = json.loads(out)
    assert seen["croniter"] == "6.2.4"  # the job's pin wins over localtailr's croniter
    assert seen["croniter_file"].startswith(str(built.path))
    assert seen["localtailr"] is not None
    assert seen["home"] == str(home.root)
    assert seen["full"] == "hello-world"
    assert seen["prefix"] == str(built.path)

    # a hit: same environment, no build step, nothing printed
    lines.clear()
    again = ensure_image(home, ImageSpec.make(python_requirements=["croniter==6.2.4",
                                                                                "Six"],
                                                         build_script_pre="ENV GREETING=hello\n"
                                                         "RUN echo pre > pre.txt",
                                                         build_script_post="ENV FULL=${GREETING}"
                                                         "-world"), progress=lines.append)
    assert again == built and lines == []

    [row] = list_images(home)
    assert row["key"] == built.key and row["state"] == "ready"
    assert row["requirements"] == ["croniter==6.2.4", "six"]
    assert row["size"] > 0 and row["in_use"] is False
    assert "installing" in image_log(home, built.key[:6])


def test_installed_modules_are_compiled_in_process(home, offline):  # noqa: F811
    """With this process's interpreter the build compiles site-packages itself (no second
    interpreter started for it): the bytecode is there before the first run, and used."""
    built = ensure_image(home, ImageSpec.make(python_requirements="six"), progress=QUIET)
    tag = sys.implementation.cache_tag
    [pyc] = built.path.glob(f"lib/python*/site-packages/__pycache__/six.{tag}.pyc")
    assert "(in-process)" in built.log_path.read_text()
    before = pyc.stat().st_mtime_ns
    out = subprocess.run([built.python, "-c", "import six; print(six.__cached__)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(pyc) and pyc.stat().st_mtime_ns == before  # valid: not rewritten


@pytest.mark.slow
@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_every_module_of_an_sdk_image_is_compiled(home, offline, monkeypatch,  # noqa: F811
                                                  installer):
    """An SDK job's image (``datatailr`` and its dependencies) has valid bytecode for each
    module in site-packages, whichever installer built it (pip once left none)."""
    monkeypatch.setenv("LOCALTAILR_INSTALLER", installer)
    built = ensure_image(home, ImageSpec.make(python_requirements="datatailr==0.2.3"),
                         progress=QUIET)
    [site] = built.path.glob("lib/python*/site-packages")
    sources = [p for p in (site / "datatailr").rglob("*.py")]
    assert sources
    missing = [p for p in sources
               if not Path(importlib.util.cache_from_source(str(p))).exists()]
    assert missing == []
    pycs = {p: p.stat().st_mtime_ns for p in site.rglob("*.pyc")}
    subprocess.run([built.python, "-c", "import datatailr.scheduler.batch"],
                   capture_output=True, check=True)
    assert {p: p.stat().st_mtime_ns for p in site.rglob("*.pyc")} == pycs  # valid, none new


@pytest.mark.slow
def test_unknown_package_offline_fails_fast_naming_it(home, offline):  # noqa: F811
    spec = ImageSpec.make(python_requirements="six, localtailr-no-such-package-xyz==1.0")
    with pytest.raises(ImageBuildError, match="localtailr-no-such-package-xyz") as info:
        ensure_image(home, spec, progress=QUIET)
    assert "offline" in str(info.value)
    key = image_key(spec)
    assert not (home.venvs / key).exists()
    assert not list(home.venvs.glob(".tmp-*"))
    assert info.value.log_path.exists()
    assert "localtailr-no-such-package-xyz" in image_log(home, key)
    [row] = list_images(home)
    assert row["state"] == "failed"


@pytest.mark.slow
def test_failing_run_line(home, offline):  # noqa: F811
    spec = ImageSpec.make(build_script_post="RUN true\nRUN echo boom >&2; exit 7")
    with pytest.raises(ImageBuildError) as info:
        ensure_image(home, spec, progress=QUIET)
    message = str(info.value)
    assert "line 2" in message and "exit code 7" in message and "boom" in message
    assert not (home.venvs / image_key(spec)).exists()


@pytest.mark.slow
def test_strict_python_refuses_a_missing_version(home, offline, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOCALTAILR_STRICT_PYTHON", "1")
    with pytest.raises(InterpreterNotFoundError):
        ensure_image(home, ImageSpec.make(python_version="3.99"), progress=QUIET)
    monkeypatch.delenv("LOCALTAILR_STRICT_PYTHON")
    built = ensure_image(home, ImageSpec.make(python_version="3.99"), progress=QUIET)
    assert "WARNING" in built.log_path.read_text() and built.warnings


BUILD_IN_CHILD = """
import sys
from pathlib import Path
from localtailr.core.home import Home
from localtailr.core.image_spec import ImageSpec
from localtailr.runtime.images.cache import ensure_image
spec = ImageSpec.make(python_requirements="six", build_script_pre=sys.argv[2])
print(ensure_image(Home(Path(sys.argv[1])), spec, progress=lambda line: None).path)
"""


@pytest.mark.slow
def test_concurrent_builds_of_one_key_build_once(home, offline, tmp_path):  # noqa: F811
    counter = tmp_path / "builds"
    pre = f"RUN echo built >> {counter} && sleep 1"
    procs = [subprocess.Popen([sys.executable, "-c", BUILD_IN_CHILD, str(home.root),
                               pre], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    paths = {p.communicate(timeout=240)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(paths) == 1
    assert counter.read_text().splitlines() == ["built"]


@pytest.mark.slow
def test_killed_build_leaves_no_half_environment(home, offline, tmp_path):  # noqa: F811
    started, go = tmp_path / "started", tmp_path / "go"
    pre = f"RUN touch {started}; while [ ! -e {go} ]; do sleep 0.1; done"
    proc = subprocess.Popen([sys.executable, "-c", BUILD_IN_CHILD, str(home.root),
                             pre], start_new_session=True)
    deadline = time.monotonic() + 120
    while not started.exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    spec = ImageSpec.make(python_requirements="six", build_script_pre=pre)
    assert not (home.venvs / image_key(spec)).exists()
    assert [r["state"] for r in list_images(home)] == ["interrupted"]
    go.touch()
    built = ensure_image(home, spec, progress=QUIET)
    assert (built.path / "localtailr-image.json").exists()
    assert not list(home.venvs.glob(".tmp-*"))
    subprocess.run([built.python, "-c", "import six"], check=True)


@pytest.mark.slow
def test_pip_fallback(home, offline, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOCALTAILR_INSTALLER", "pip")
    built = ensure_image(home, ImageSpec.make(python_requirements="six"),
                         progress=QUIET)
    log = built.log_path.read_text()
    commands = [line for line in log.splitlines() if line.startswith("$ ")]
    assert "virtualenv" in log and any(" pip " in c for c in commands)
    # no uv command ran (a random temporary folder's name may hold the letters "uv")
    assert not [c for c in commands if Path(c.split()[1]).name == "uv" or " uv " in c], commands
    subprocess.run([built.python, "-c", "import six"], check=True)


@pytest.mark.slow
def test_console_scripts_work_after_the_move(home, offline):  # noqa: F811
    built = ensure_image(home, ImageSpec.make(python_requirements="flask"),
                         progress=QUIET)
    out = subprocess.run([str(built.bin / "flask"), "--version"], capture_output=True,
                         text=True, env=built.environ())
    assert out.returncode == 0, out.stderr
    assert "Flask" in out.stdout
    # written by uv for the base interpreter, pointed at the environment's own
    assert (built.bin / "flask").read_text().splitlines()[0] == f"#!{built.python}"


def test_a_build_runs_one_uv_process_into_an_environment_written_here(home, offline):  # noqa: F811
    """uv installs into the environment as a prefix (no `uv venv`, no interpreter of the
    new environment asked): one uv command a build; the result is a working venv."""
    built = ensure_image(home, ImageSpec.make(python_requirements="six"), progress=QUIET)
    commands = [line for line in built.log_path.read_text().splitlines()
                if line.startswith("$ ")]
    assert len(commands) == 1 and " pip install " in commands[0] and "--prefix" in commands[0]
    code = "import sys, six; print(sys.prefix, sys.base_prefix != sys.prefix, six.__file__)"
    prefix, is_venv, six_file = subprocess.run(
        [built.python, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert prefix == str(built.path) and is_venv == "True"
    assert six_file.startswith(str(built.path))
    activate = (built.bin / "activate").read_text()
    assert f'VIRTUAL_ENV="{built.path}"' in activate and ".tmp-" not in activate


def _add_run(home, image_key, state):  # noqa: F811
    conn = store.connection(home)
    with store.transaction(conn):
        now = time.time()
        conn.execute("INSERT OR IGNORE INTO users (user_id, name, created_at) VALUES (999, "
                     "'imgtest', ?)", (now,))
        job = conn.execute("INSERT INTO jobs (name, environment, type, owner_id, created_at) "
                           "VALUES (?, 'dev', 'batch', 999, ?)", (f"j{now}", now)).lastrowid
        conn.execute("INSERT INTO runs (job_id, version, state, run_as, environment, "
                     "created_at, image_key) VALUES (?, 1, ?, 999, 'dev', ?, ?)",
                     (job, state, now, image_key))


@pytest.mark.slow
def test_gc_never_removes_an_image_in_use(home, offline):  # noqa: F811
    specs = [ImageSpec.make(build_script_post=f"ENV N={n}") for n in range(3)]
    keys = [ensure_image(home, s, progress=QUIET).key for s in specs]
    _add_run(home, keys[0], "running")
    _add_run(home, keys[2], "succeeded")
    assert in_use_keys(home) == {keys[0]}
    assert {r["key"]: r["in_use"] for r in list_images(home)}[keys[0]] is True
    assert gc(home, 3600) == []  # all recent
    removed = gc(home, 0, in_use_keys=[keys[1]])
    assert removed == [keys[2]]
    assert sorted(r["key"] for r in list_images(home)) == sorted(keys[:2])
    assert not (home.venvs / keys[2]).exists()
    with pytest.raises(ValueError, match="no image"):
        image_log(home, keys[2])
