"""Issue 9: no process a run started outlives the run, however it detached (fork + setsid
+ fork, from a spawned run or one forked by a fork server). ``localtailr status`` says
which mechanism holds."""

from __future__ import annotations

import psutil
import pytest
from support import runtime_support
from support.runtime_support import submit, wait_for, wait_state

from localtailr.runtime.daemon import control
from localtailr.runtime.process import cpu_limit

daemon = runtime_support.daemon  # the fixture: a real daemon for the test's home


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(params=["spawned", "forked"])
def launcher(request, monkeypatch):
    monkeypatch.setenv("LOCALTAILR_FORK_SERVER", "1" if request.param == "forked" else "0")
    return request.param


@pytest.mark.slow
def test_a_daemonized_grandchild_ends_with_its_run(localtailr_home, launcher, daemon, tmp_path):
    home = localtailr_home.home
    env = {"MARK_DIR": str(tmp_path)}
    if launcher == "forked":  # the first run of an image starts its fork server
        wait_for(lambda: _forked(home), 120, "a run forked by the fork server")
    run = submit(home, "escape", "daemonize_and_exit", env_vars=env)
    ended = wait_state(home, run["run_id"])
    assert ended["state"] == "succeeded", dict(ended)
    how = [d for s, d in runtime_support.events(home, run["run_id"]) if s == "running"][0]
    assert ("forked by fork server" in how) == (launcher == "forked"), how
    pid = int((tmp_path / "escaped").read_text())
    wait_for(lambda: not _alive(pid), 30, f"the escaped grandchild {pid} to be killed")
    assert "leftover process" in ended["reason"], ended["reason"]


def _forked(home) -> bool:
    run_id = submit(home, "warm", "hello")["run_id"]
    wait_state(home, run_id)
    return any("forked by fork server" in (d or "")
               for s, d in runtime_support.events(home, run_id) if s == "running")


def test_status_says_how_processes_are_held(localtailr_home, cli):
    assert cpu_limit.containment() in ("cgroups v2", "run marker + process tree")
    assert control.status(localtailr_home.home)["containment"] == cpu_limit.containment()
    out = cli("status")
    assert f"processes {cpu_limit.containment()}" in out.stdout, out.stdout
