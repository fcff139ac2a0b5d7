"""Issue 9: ``localtailr logs <workflow>`` shows the run's tasks' output, each line prefixed
by its task (as ``docker compose logs`` does); ``--task NAME`` picks one."""

from __future__ import annotations

import pytest
from support import wf_runtime_tasks as wt

from localtailr.platform import logs
from localtailr.platform.context import context
from localtailr.runtime.daemon import control

TIMEOUT = 120


@pytest.fixture
def talked(localtailr_home):
    run = wt.talkative()
    assert run.wait(TIMEOUT) == "succeeded"
    yield run
    control.stop(localtailr_home.home)


@pytest.mark.slow
def test_logs_of_a_workflow_are_its_tasks_lines_prefixed(talked, cli):
    out = cli("logs", "talkative")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert sorted(lines) == sorted([
        "say    | hello 0", "say    | hello 1",
        "second | world 0", "second | world 1", "second | world 2",
        "echo   | hello 0"])
    assert lines.index("say    | hello 0") < lines.index("say    | hello 1")
    assert lines.index("say    | hello 1") < lines.index("echo   | hello 0")  # echo ran after

    picked = cli("logs", "talkative", "--task", "second", "--tail", "2")
    assert picked.stdout.splitlines() == ["second | world 1", "second | world 2"]

    followed = cli("logs", "talkative", "-f", "--task", "echo")
    assert followed.stdout.splitlines() == ["echo | hello 0"]
    assert sorted(cli("logs", "talkative", "-f").stdout.splitlines()) == sorted(lines)


@pytest.mark.slow
def test_an_unknown_task_is_a_clear_error(talked, cli):
    out = cli("logs", "talkative", "--task", "nope")
    assert out.returncode != 0
    assert "no task 'nope'" in out.stderr and "second" in out.stderr, out.stderr
    with pytest.raises(ValueError, match="no task 'nope'"):
        logs.read(context(), talked.run_id, task="nope")
