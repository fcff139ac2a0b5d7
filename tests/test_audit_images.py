"""Audit of issue 3 (Images): the points no other test showed."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from support.images_support import home, offline  # noqa: F401 (fixtures)

from localtailr.core.image_spec import ImageSpec
from localtailr.runtime.images.cache import ensure_image
from localtailr.runtime.images.interpreters import find_interpreter

QUIET = [].append

BUILD_WAITING_FOR = """
import sys
from pathlib import Path
from localtailr.core.home import Home
from localtailr.core.image_spec import ImageSpec
from localtailr.runtime.images.cache import ensure_image
spec = ImageSpec.make(build_script_pre=sys.argv[2])
print(ensure_image(Home(Path(sys.argv[1])), spec, progress=lambda line: None).path)
"""


@pytest.mark.slow
def test_different_keys_build_side_by_side(home, offline, tmp_path):  # noqa: F811
    # each build waits (up to 60 s) for the other to have started: a global lock would fail it
    a, b = tmp_path / "a-started", tmp_path / "b-started"
    scripts = [f"RUN touch {mine}; for i in $(seq 600); do [ -e {other} ] && exit 0; sleep 0.1; done; exit 9"
               for mine, other in ((a, b), (b, a))]
    procs = [subprocess.Popen([sys.executable, "-c", BUILD_WAITING_FOR, str(home.root), s],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in scripts]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-500:] for o in outs]
    assert len({o[0].strip() for o in outs}) == 2


@pytest.mark.slow
def test_a_hit_never_touches_the_network_or_the_installer(home, offline, monkeypatch):  # noqa: F811
    spec = ImageSpec.make(python_requirements="six")
    built = ensure_image(home, spec, progress=QUIET)
    # no wheelhouse, not offline, every proxy a closed port, no installer on PATH
    monkeypatch.setenv("LOCALTAILR_WHEELHOUSE", str(home.root / "no-such-wheelhouse"))
    monkeypatch.delenv("LOCALTAILR_OFFLINE")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.setenv("PATH", "")
    lines = []
    again = ensure_image(home, ImageSpec.make(python_requirements=["Six"]), progress=lines.append)
    assert again == built and lines == []


@pytest.mark.slow
def test_uv_installs_by_default(home, offline):  # noqa: F811
    from localtailr.runtime.images.cache import find_uv

    if find_uv() is None:
        pytest.skip("uv is not installed here")
    built = ensure_image(home, ImageSpec.make(python_requirements="six"), progress=QUIET)
    log = built.log_path.read_text()
    assert "with uv" in log and "uv pip install" in log and "pip install --no-input" not in log


@pytest.mark.slow
def test_auto_without_a_project_reuses_the_calling_environment(home, offline, tmp_path):  # noqa: F811
    spec = ImageSpec.make(python_requirements="auto", base_dir=tmp_path)
    assert spec.requirements == ()
    built = ensure_image(home, spec, progress=QUIET)
    # hypothesis is in the caller's environment (the test extra), not a localtailr dependency
    out = subprocess.run([built.python, "-c", "import hypothesis; print(hypothesis.__file__)"],
                         capture_output=True, text=True, env=built.environ())
    assert out.returncode == 0, out.stderr
    import hypothesis

    assert out.stdout.strip() == hypothesis.__file__  # used in place, not copied
    assert not any(built.path.rglob("hypothesis"))


def test_auto_python_version_follows_the_projects_requires_python(tmp_path, monkeypatch):
    monkeypatch.delenv("LOCALTAILR_STRICT_PYTHON", raising=False)
    project = tmp_path / "proj"
    project.mkdir()
    pyproject = project / "pyproject.toml"
    pyproject.write_text('[project]\nname = "p"\nrequires-python = ">=3.8"\ndependencies = ["six"]\n')
    spec = ImageSpec.make(python_requirements="auto", base_dir=project)
    assert spec.python_version == "auto" and spec.requirements == ("six",)  # met by this Python
    pyproject.write_text('[project]\nname = "p"\nrequires-python = ">=3.99"\ndependencies = []\n')
    spec = ImageSpec.make(python_requirements="auto", base_dir=project)
    assert spec.python_version == ">=3.99"
    interp = find_interpreter(spec.python_version)
    assert interp.warning and "3.99" in interp.warning  # none found: current one, with a warning


def test_any_pep440_specifier_is_accepted():
    from localtailr.core.requirements import parse_requirements

    entries = ["a~=1.3", "b===1.0", "c!=1.*", "d[extra]>=1; python_version>'3'",
               "e @ https://example.com/e-1.0-py3-none-any.whl", "f>=1.0.dev1,<2.0rc1",
               "g==1.0+local", "h>=1.0.post2", "i<=2,>0.5"]
    assert parse_requirements(entries) == entries
    ImageSpec.make(python_requirements=entries)  # valid for an image too


@pytest.mark.slow
def test_image_ls_shows_every_column(cli, offline, tmp_path):  # noqa: F811
    script = tmp_path / "job.py"
    script.write_text("# requirements: six\nimport six\n")
    assert cli("run", str(script)).returncode == 0
    [row] = json.loads(cli("image", "ls", "--json").stdout)
    assert row["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert row["requirements"] == ["six"] and row["size"] > 0
    assert row["last_used"] > time.time() - 3600 and row["in_use"] is False
    header = cli("image", "ls").stdout.splitlines()[0]
    for column in ("KEY", "PYTHON", "REQUIREMENTS", "SIZE", "LAST USED", "IN USE"):
        assert column in header


@pytest.mark.slow
def test_cli_run_shows_progress_then_a_failed_builds_log_in_one_error(cli, offline, tmp_path):  # noqa: F811
    good = tmp_path / "good.py"
    good.write_text("# requirements: six\nimport six\nprint('ran')\n")
    done = cli("run", str(good))
    assert done.returncode == 0 and done.stdout == "ran\n"
    assert done.stderr == ""  # piped: no progress (a terminal shows it: tests/test_ux_cli.py)

    bad = tmp_path / "bad.py"
    bad.write_text("# requirements: localtailr-no-such-package-xyz==1.0\nprint('ran')\n")
    done = cli("run", str(bad))
    assert done.returncode == 1 and "ran" not in done.stdout
    assert "Traceback" not in done.stderr
    assert "build log (" in done.stderr and "== FAILED" in done.stderr  # the log is shown
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "localtailr-no-such-package-xyz" in last


LIVE = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    print("first", flush=True)
    go = Path(sys.argv[1])
    for _ in range(600):
        if go.exists():
            break
        time.sleep(0.1)
    print("second", flush=True)
""")


@pytest.mark.slow
def test_cli_run_streams_output_live(localtailr_home, offline, tmp_path):  # noqa: F811
    script, go = tmp_path / "live.py", tmp_path / "go"
    script.write_text(LIVE)
    exe = Path(sys.executable).with_name("localtailr")
    proc = subprocess.Popen([str(exe), "run", str(script), str(go)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "LOCALTAILR_HOME": str(localtailr_home.root)})
    try:
        assert proc.stdout.readline() == "first\n"  # before the script may finish
        assert not go.exists() and proc.poll() is None
        go.touch()
        assert proc.stdout.readline() == "second\n"
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
