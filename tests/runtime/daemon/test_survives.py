"""Issue 9, the daemon must not die: whatever goes wrong launching one run fails that run
with its reason, the loop goes on, and a restart never retries it for ever. And bad run
parameters and env vars are refused when given, on every face."""

from __future__ import annotations

import json

import psutil
import pytest
from support import runtime_support
from support.runtime_support import events, row, submit, wait_for, wait_state

from localtailr import BatchJob, User, store
from localtailr.platform import jobs
from localtailr.platform.context import context
from localtailr.runtime.daemon import control, loop, recovery
from localtailr.store import runs as run_state

HOSTILE = 10
daemon = runtime_support.daemon  # the fixture: a real daemon for the test's home


def _queue(home, user: str, params: dict) -> int:
    """A pending run of bob's job whose params hold what validation would refuse."""
    conn = store.connection(home)
    job = conn.execute("SELECT job_id, current_version FROM jobs WHERE name = 'hello'").fetchone()
    uid = conn.execute("SELECT user_id FROM users WHERE name = ?", (user,)).fetchone()[0]
    with store.transaction(conn):
        cur = conn.execute(
            "INSERT INTO runs (job_id, version, state, run_as, environment, trigger, params, "
            "created_at) VALUES (?, ?, 'pending', ?, 'dev', 'manual', ?, 0)",
            (job[0], job[1], uid, json.dumps(params)))
    return cur.lastrowid


@pytest.fixture(params=["spawned", "forked"])
def launcher(request, monkeypatch):
    """Runs spawned by the daemon, or forked by a fork server."""
    monkeypatch.setenv("LOCALTAILR_FORK_SERVER", "1" if request.param == "forked" else "0")
    return request.param


@pytest.mark.slow
def test_hostile_launches_fail_their_run_and_the_daemon_goes_on(localtailr_home, launcher,
                                                                daemon):
    home = localtailr_home.home
    User.add("bob")
    localtailr_home.as_user("bob")
    first = submit(home, "hello", "hello", params={"rundate": "2026-01-01"})
    assert wait_state(home, first["run_id"])["state"] == "succeeded"
    pid = daemon["pid"]
    hostile = []
    for i in range(HOSTILE):  # a NUL in a value, in a name
        params = {"rundate": f"bad\x00{i}"} if i % 2 else {f"x\x00{i}": "v"}
        hostile.append(_queue(home, "bob", params))
        jobs.notify(home)
        r = wait_state(home, hostile[-1])
        assert r["state"] == "failed", dict(r)
        assert "null" in r["reason"].lower() or "nul" in r["reason"].lower(), r["reason"]
    assert psutil.pid_exists(pid) and control.running_info(home)["pid"] == pid
    later = jobs.start(context(user="bob"), "hello", params={"rundate": "2026-02-02"})
    assert wait_state(home, later["run_id"])["state"] == "succeeded"
    # a restart retries none of them
    seen = {i: events(home, i) for i in hostile}
    control.stop(home)
    control.ensure_running(home, quiet=True)
    after = jobs.start(context(user="bob"), "hello")
    assert wait_state(home, after["run_id"])["state"] == "succeeded"
    assert {i: events(home, i) for i in hostile} == seen


def test_a_launch_interrupted_by_restarts_is_not_retried_for_ever(localtailr_home):
    """A run left ``building`` by a daemon that died launching it is re-queued at most
    ``LAUNCH_ATTEMPTS`` times, then failed with the reason."""
    home = localtailr_home.home
    run = submit(home, "hello", "hello")
    run_id = run["run_id"]
    d = loop.Daemon(home)
    for _ in range(recovery.LAUNCH_ATTEMPTS):
        run_state.transition(home, run_id, "building")  # as a daemon that died mid-launch
        d.recover()
        assert row(home, run_id)["state"] == "pending"
    run_state.transition(home, run_id, "building")
    d.recover()
    r = row(home, run_id)
    assert r["state"] == "failed"
    assert "restarted" in r["reason"] and "launch" in r["reason"], r["reason"]


def test_any_launch_error_fails_only_that_run(localtailr_home, monkeypatch):
    """An unexpected exception (not a LaunchError) while launching: the run fails with it."""
    home = localtailr_home.home
    run_id = submit(home, "hello", "hello")["run_id"]
    d = loop.Daemon(home)
    (home.run_dir(run_id)).mkdir(parents=True)
    (home.run_dir(run_id) / "launch.json").mkdir()  # a path in the way
    d.start_pending()
    r = wait_for(lambda: (d.finish_builds(), row(home, run_id))[1]["state"] != "building"
                 and row(home, run_id), 120, "the launch")
    assert r["state"] == "failed"
    assert "launch.json" in r["reason"], r["reason"]
    assert not d.runs


@pytest.mark.parametrize("params, what", [
    ({"rundate": "a\x00b"}, "NUL"),
    ({"rundate": "a\x1bb"}, "control character"),
    ({"rundate": "a\x7fb"}, "control character"),
    ({"rundate\n": "x"}, "name"),
])
def test_bad_params_are_refused_and_nothing_is_queued(localtailr_home, params, what):
    home = localtailr_home.home
    jobs.save(context(), {"name": "hello", "type": "batch",
                          "entrypoint": {"module": "support.runtime_jobs", "qualname": "hello"}})
    before = store.connection(home).execute("SELECT count(*) FROM runs").fetchone()[0]
    with pytest.raises(ValueError, match=what):
        jobs.start(context(), "hello", params=params)
    with pytest.raises(ValueError, match=what):
        jobs.run(context(), {"name": "hello", "type": "batch", "entrypoint": {
            "module": "support.runtime_jobs", "qualname": "hello"}}, params=params)
    assert store.connection(home).execute("SELECT count(*) FROM runs").fetchone()[0] == before


@pytest.mark.parametrize("env_vars, what", [
    ({"A": "x\x00y"}, "NUL"),
    ({"A": "x\x07y"}, "control character"),
    ({"A\n": "x"}, "name"),
    ({"A\x00": "x"}, "name"),
])
def test_bad_env_vars_are_refused(localtailr_home, env_vars, what):
    with pytest.raises(ValueError, match=what):
        jobs.save(context(), {"name": "hello", "type": "batch", "env_vars": env_vars,
                              "entrypoint": {"module": "support.runtime_jobs", "qualname": "hello"}})
    with pytest.raises(ValueError, match=what):
        BatchJob("hello", "support.runtime_jobs:hello", env_vars=env_vars)


def test_multi_line_values_are_kept(localtailr_home):
    jobs.save(context(), {"name": "hello", "type": "batch", "env_vars": {"PEM": "a\nb\tc\r\n"},
                          "entrypoint": {"module": "support.runtime_jobs", "qualname": "hello"}})
    run = jobs.start(context(), "hello", params={"note": "line 1\nline 2"})
    assert run["params"] == {"note": "line 1\nline 2"}


def test_cli_refuses_a_nul_free_control_param(cli, localtailr_home):
    jobs.save(context(), {"name": "hello", "type": "batch",
                          "entrypoint": {"module": "support.runtime_jobs", "qualname": "hello"}})
    out = cli("job", "run", "hello", "--param", "rundate=a\x1bb")
    assert out.returncode != 0
    assert "control character" in out.stderr and "Traceback" not in out.stderr, out.stderr

