"""Runs forked by the daemon's fork servers: own session, env, folder, output files, exit
code, memory limit; fallback to a spawn; nothing left after ``down``; adoption of a forked
task after the daemon is killed. Real daemons, real processes."""

from __future__ import annotations

import json
import os
import signal
import time

import psutil
from support import runtime_support
from support.runtime_support import entry, events, read, wait_for, wait_state

from localtailr.platform import jobs
from localtailr.platform.context import context
from localtailr.runtime.daemon import control

daemon = runtime_support.daemon  # the fixture: a real daemon for the test's home
MODULE = "support.forkserver_jobs"


def submit(home, name: str, qualname: str, **definition) -> dict:
    d = {"name": name, "type": "batch", "entrypoint": entry(qualname, MODULE),
         "image": {"python_version": "auto"}, **definition}
    return jobs.run(context(home), d)


def forked_by(home, run_id: int) -> int | None:
    """The fork server pid that forked the run (from its ``running`` event), or None."""
    for state, detail in events(home, run_id):
        if state in ("running", "starting") and detail and "forked by fork server pid " in detail:
            return int(detail.split("forked by fork server pid ")[1].split(",")[0])
    return None


def forked(home, name: str, qualname: str, states=("succeeded",), **definition):
    """Run the job until a run of it is forked (the first run of an image starts the
    server and is spawned); that run's row and its server's pid."""
    for _ in range(40):
        run = submit(home, name, qualname, **definition)
        done = wait_state(home, run["run_id"], states)
        server = forked_by(home, run["run_id"])
        if server is not None:
            return done, server
        time.sleep(0.1)
    raise AssertionError(f"no run of {name} was forked")


def servers_of(home) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if any(a.endswith("forkserver.py") for a in proc.cmdline()[:3]) and \
                    proc.environ().get("LOCALTAILR_HOME") == str(home.root) and \
                    proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            pass
    return out


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_forked_run_has_its_session_env_folder_and_output(localtailr_home, daemon):
    home = localtailr_home.home
    done, server = forked(home, "who", "identity", env_vars={"GREETING": "hi"})
    assert done["state"] == "succeeded" and done["exit_code"] == 0, done["reason"]
    me = json.loads(read(home, done["run_id"]).strip().splitlines()[-1])
    assert me["pid"] == done["pid"] and me["ppid"] == server
    assert me["sid"] == me["pid"] and me["pgid"] == me["pid"]  # its own session and group
    assert me["cwd"] == str(home.run_dir(done["run_id"]))
    assert me["stdin"] == "/dev/null"
    assert me["run_id"] == str(done["run_id"]) and me["greeting"] == "hi"
    assert me["job_name"] == "who"
    assert "to stderr" in read(home, done["run_id"], "stderr")
    assert [s for s, _ in events(home, done["run_id"])] == ["pending", "building", "running",
                                                              "succeeded"]


def test_forked_run_exit_code_and_signal_are_recorded(localtailr_home, daemon):
    home = localtailr_home.home
    done, _ = forked(home, "five", "exit_five", states=("succeeded", "failed"))
    assert done["state"] == "failed" and done["exit_code"] == 5
    assert done["reason"].startswith("exit code 5")
    d = {"name": "sleeper", "type": "batch", "entrypoint": entry("sleep_forever"),
         "image": {"python_version": "auto"}}
    r = jobs.run(context(home), d)
    running = wait_state(home, r["run_id"], ("running",))
    assert forked_by(home, r["run_id"]) is not None
    os.kill(running["pid"], signal.SIGKILL)
    ended = wait_state(home, r["run_id"])
    assert ended["state"] == "failed" and "SIGKILL" in ended["reason"]
    assert ended["exit_code"] == -9


def test_memory_limit_of_a_forked_run(localtailr_home, daemon):
    home = localtailr_home.home
    forked(home, "warm", "identity")
    d = {"name": "hog", "type": "batch", "entrypoint": entry("eat_memory"),
         "image": {"python_version": "auto"}, "resources": {"memory": "128m", "cpu": 2.0}}
    run = jobs.run(context(home), d)
    done = wait_state(home, run["run_id"])
    assert forked_by(home, run["run_id"]) is not None
    assert done["state"] == "killed"
    assert done["reason"].startswith("killed: memory limit 128m exceeded (peak ")
    assert not _alive(done["pid"])


def test_workflow_tasks_are_forked(localtailr_home, daemon):
    from support import forkserver_jobs as fj

    home = localtailr_home.home
    for _ in range(40):
        run = fj.just_one()
        assert run.wait(120) == "succeeded", run.reason
        task = run.tasks()[0]
        if forked_by(home, task["run_id"]) is not None:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("no task was forked")
    assert run.results() == {"one": 1}


def test_killed_fork_server_falls_back_to_a_spawn(localtailr_home, daemon):
    home = localtailr_home.home
    _, server = forked(home, "who", "identity")
    os.kill(server, signal.SIGKILL)
    wait_for(lambda: not _alive(server), 30, "the fork server to die")
    run = submit(home, "who", "identity")
    done = wait_state(home, run["run_id"])
    assert done["state"] == "succeeded", done["reason"]
    me = json.loads(read(home, done["run_id"]).strip().splitlines()[-1])
    assert forked_by(home, run["run_id"]) is None
    assert me["ppid"] == daemon["pid"] and me["sid"] == me["pid"]


def test_down_leaves_no_fork_server(localtailr_home, daemon):
    home = localtailr_home.home
    forked(home, "who", "identity")
    pids = [p.pid for p in servers_of(home)]
    assert pids
    assert control.stop(home)
    wait_for(lambda: not any(_alive(p) for p in pids), 30, "the fork servers to exit")
    assert servers_of(home) == []


def test_kill_9_of_the_daemon_then_restart_adopts_a_forked_task(localtailr_home, daemon, tmp_path):
    from support import forkserver_jobs as fj

    home = localtailr_home.home
    for _ in range(40):  # a workflow whose task is forked
        go = tmp_path / f"go-{_}"
        run = fj.waiter(str(go))
        task = wait_for(lambda run=run: [t for t in run.tasks() if t["state"] == "running"],
                        60, "the task to run")[0]
        server = forked_by(home, task["run_id"])
        if server is not None:
            break
        go.write_text("spawned")
        assert run.wait(120) == "succeeded"
    else:
        raise AssertionError("no task was forked")

    os.kill(daemon["pid"], signal.SIGKILL)
    wait_for(lambda: not control.lock_held(home), 30, "the lock to be released")
    wait_for(lambda: not _alive(server), 30, "the fork server to exit with its daemon")
    assert _alive(task["pid"])  # the forked task outlives both

    info = control.ensure_running(home, quiet=True)
    assert info["pid"] != daemon["pid"]
    wait_for(lambda: ("adopted", f"pid {task['pid']}") in events(home, task["run_id"]), 60,
             "the task to be adopted")
    go.write_text("forked")
    assert run.wait(120) == "succeeded", run.reason
    assert run.results() == {"wait_for_file": "forked"}
    control.stop(home)


def test_fork_servers_can_be_switched_off(localtailr_home, monkeypatch):
    monkeypatch.setenv("LOCALTAILR_FORK_SERVER", "0")
    monkeypatch.setenv("LOCALTAILR_STOP_GRACE", "2")
    home = localtailr_home.home
    control.ensure_running(home, quiet=True)
    try:
        for name in ("a", "b", "c"):
            run = submit(home, name, "identity")
            assert wait_state(home, run["run_id"])["state"] == "succeeded"
            assert forked_by(home, run["run_id"]) is None
        assert servers_of(home) == []
    finally:
        control.stop(home)
