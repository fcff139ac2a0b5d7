"""``localtailr run`` and ``localtailr image ...`` on the command line."""

import json
import textwrap

import pytest
from support.images_support import offline  # noqa: F401

pytestmark = pytest.mark.slow


def test_run_script_with_header_params_and_secret(cli, offline, tmp_path):  # noqa: F811
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""\
        # requirements: six
        # secrets: api_token
        import os, six, localtailr
        print("param", localtailr.params["day"], os.environ["LOCALTAILR_PARAM_DAY"])
        print("secret", os.environ["api_token"])
        print("no other secret", "other" not in os.environ)
        raise SystemExit(7)
    """))
    assert cli("secret", "put", "api_token", input="t0ken").returncode == 0
    assert cli("secret", "put", "other", input="x").returncode == 0
    done = cli("run", str(script), "--param", "day=2026-11-22", env={"LOCALTAILR_OFFLINE": "1"})
    assert done.returncode == 7, done.stderr
    assert "param 2026-11-22 2026-11-22" in done.stdout
    assert "secret t0ken" in done.stdout
    assert "no other secret True" in done.stdout

    listed = json.loads(cli("image", "ls", "--json").stdout)
    assert [r["requirements"] for r in listed] == [["six"]]
    key = listed[0]["key"]
    assert "six" in cli("image", "log", key[:8]).stdout
    # a recent environment survives gc; an old one goes
    assert json.loads(cli("image", "gc", "--older-than", "7d", "--json").stdout)["removed"] == []
    # any user may look; only an admin removes (it slows every job that used the image)
    cli("user", "add", "alice")
    assert [r["key"] for r in json.loads(cli("--as", "alice", "image", "ls", "--json").stdout)] == [key]
    for args in (["image", "gc", "--older-than", "0s"], ["image", "rm", key[:8]]):
        refused = cli("--as", "alice", *args)
        assert refused.returncode == 1 and "lacks ADMIN" in refused.stderr, refused.stderr
    assert [r["key"] for r in json.loads(cli("image", "ls", "--json").stdout)] == [key]
    assert json.loads(cli("image", "gc", "--older-than", "0s", "--json").stdout)["removed"] == [key]


def test_run_refuses_unreadable_secret(cli, offline, tmp_path):  # noqa: F811
    script = tmp_path / "job.py"
    script.write_text("# secrets: api_token\nprint('ran')\n")
    cli("user", "add", "alice")
    cli("secret", "put", "api_token", input="t0ken")
    done = cli("--as", "alice", "run", str(script), env={"LOCALTAILR_OFFLINE": "1"})
    assert done.returncode == 1
    assert "lacks READ" in done.stderr and "ran" not in done.stdout
    assert "t0ken" not in done.stderr


def test_bad_age_is_one_line(cli):
    done = cli("image", "gc", "--older-than", "soon")
    assert done.returncode == 1
    assert done.stderr.strip() == "error: invalid age 'soon': use a number with s, m, h, d or w, like '7d'"
