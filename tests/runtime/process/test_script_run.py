"""`localtailr run script.py`: header environment, params, secrets, run id, exit code."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from support.images_support import home, offline  # noqa: F401 (fixtures)

from localtailr.core.params import param_env_name, parse_params
from localtailr.runtime.process.script_run import run_script

SCRIPT = textwrap.dedent("""\
    #!/usr/bin/env python
    # requirements: six
    # secrets: API_TOKEN, db/password
    import json, os, sys
    import six
    from localtailr.params import params
    seen = {
        "params": params,
        "param_env": os.environ.get("LOCALTAILR_PARAM_RUN_DATE"),
        "token": os.environ.get("API_TOKEN"),
        "db": os.environ.get("db_password"),
        "other": os.environ.get("OTHER_SECRET"),
        "run_id": os.environ.get("LOCALTAILR_RUN_ID"),
        "home": os.environ.get("LOCALTAILR_HOME"),
        "cwd": os.getcwd(),
        "prefix": sys.prefix,
        "args": sys.argv[1:],
        "six": six.__file__,
    }
    print(json.dumps(seen))
    print("to stderr", file=sys.stderr)
    sys.exit(int(params.get("exit", "0")))
""")

SECRETS = {"API_TOKEN": "t0ken", "db/password": "pw", "OTHER_SECRET": "never"}


def test_parse_params():
    assert parse_params(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(ValueError, match="'novalue'.*KEY=VALUE"):
        parse_params(["novalue"])
    assert param_env_name("run-date") == "LOCALTAILR_PARAM_RUN_DATE"


def test_secrets_need_a_getter_and_script_must_exist(home, tmp_path):  # noqa: F811
    script = tmp_path / "s.py"
    script.write_text("# secrets: API_TOKEN\nprint(1)\n")
    with pytest.raises(ValueError, match="API_TOKEN"):
        run_script(home, script, {}, None)
    with pytest.raises(ValueError, match="not found"):
        run_script(home, tmp_path / "missing.py", {}, None)


def test_malformed_header_is_rejected(home, tmp_path):  # noqa: F811
    script = tmp_path / "s.py"
    script.write_text("# requirements: six==\nprint(1)\n")
    with pytest.raises(ValueError, match="'six=='"):
        run_script(home, script, {}, None)


@pytest.mark.slow
def test_run_script_end_to_end(home, offline, tmp_path):  # noqa: F811
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    run_dir = tmp_path / "run-1"
    code = run_script(home, script, {"run-date": "2024-01-02", "exit": "3"}, SECRETS.__getitem__,
                      stream=False, run_dir=run_dir, args=["--flag"], progress=lambda _: None)
    assert code == 3
    seen = json.loads((run_dir / "stdout").read_text())
    assert (run_dir / "stderr").read_text().strip() == "to stderr"
    assert seen["params"] == {"run-date": "2024-01-02", "exit": "3"}
    assert seen["param_env"] == "2024-01-02"
    assert seen["token"] == "t0ken" and seen["db"] == "pw"
    assert seen["other"] is None  # not named in the header: not exposed
    assert seen["run_id"] == "run-1"
    assert seen["home"] == str(home.root)
    assert seen["cwd"] == str(run_dir)
    assert seen["prefix"].startswith(str(home.venvs))
    assert seen["six"].startswith(seen["prefix"])
    assert seen["args"] == ["--flag"]

    # a second run reuses the cached environment, in a fresh folder of its own
    before = sorted(p.name for p in home.venvs.iterdir())
    code = run_script(home, script, {}, SECRETS.__getitem__, stream=False,
                      progress=lambda _: None)
    assert code == 0
    assert sorted(p.name for p in home.venvs.iterdir()) == before
    runs = [p for p in home.runs.iterdir() if p.name.startswith("script-")]
    assert len(runs) == 1
    second = json.loads((runs[0] / "stdout").read_text())
    assert second["run_id"] == runs[0].name and second["prefix"] == seen["prefix"]


STREAMED = """
import sys
from pathlib import Path
from localtailr.core.home import Home
from localtailr.runtime.process.script_run import run_script
sys.exit(run_script(Home(Path(sys.argv[1])), sys.argv[2], {}, None, progress=lambda _: None))
"""


@pytest.mark.slow
def test_output_is_streamed_and_exit_code_passed(home, offline, tmp_path):  # noqa: F811
    script = tmp_path / "pep723.py"
    script.write_text(textwrap.dedent("""\
        # /// script
        # dependencies = ["attrs"]
        # ///
        import attrs, sys
        print("out", attrs.__name__, flush=True)
        print("err", file=sys.stderr)
        raise SystemExit(5)
    """))
    done = subprocess.run([sys.executable, "-c", STREAMED, str(home.root), str(script)],
                          capture_output=True, text=True, env=os.environ)
    assert done.returncode == 5, done.stderr
    assert done.stdout == "out attrs\n"
    assert done.stderr.strip().endswith("err")
