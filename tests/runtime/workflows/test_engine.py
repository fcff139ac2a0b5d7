"""Workflows run through the runtime: each task in its own process, results through the store.

Runs are waited for with ``WorkflowRun.wait()``, which starts the daemon if none runs; tasks
are real subprocesses.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import textwrap
import threading
import time

import pytest
from support import wf_runtime_tasks as wt

from localtailr import store
from localtailr.platform import jobs
from localtailr.platform.context import context
from localtailr.sdk.workflow import WorkflowBuildError
from localtailr.sdk.workflow_run import WorkflowRun

TIMEOUT = 120


@pytest.fixture(autouse=True)
def _stop_daemon(localtailr_home):
    yield
    try:
        from localtailr.runtime.daemon import control
    except ModuleNotFoundError:
        return
    control.stop(localtailr_home.home)


def by_name(handle: WorkflowRun) -> dict[str, dict]:
    return {t["task_name"]: t for t in handle.tasks()}


def test_results_are_passed_between_tasks(localtailr_home):
    run = wt.chain()
    assert run.wait(TIMEOUT) == "succeeded"
    assert run.results() == {"number": 1, "add": 3, "sum": 4, "total": 9}
    tasks = by_name(run)
    assert {t["state"] for t in tasks.values()} == {"succeeded"}
    assert tasks["sum"]["result_repr"] == "4"
    assert all(t["parent_run_id"] == run.run_id for t in tasks.values())


def test_independent_tasks_run_in_parallel(localtailr_home, tmp_path):
    run = wt.parallel(str(tmp_path))  # each task waits for the other to be running
    assert run.wait(TIMEOUT) == "succeeded", run.reason
    assert run.results() == {"left": "left", "right": "right"}


def test_failure_skips_dependents_and_the_rest_finish(localtailr_home):
    run = wt.partial_failure()
    assert run.wait(TIMEOUT) == "failed"
    tasks = by_name(run)
    assert tasks["fail"]["state"] == "failed"
    assert "ValueError: bad input 1" in tasks["fail"]["error"]
    for name in ("after bad", "also after", "two after"):
        assert tasks[name]["state"] == "skipped"
        assert tasks[name]["reason"] == "upstream fail failed"
    assert tasks["fine"]["state"] == "succeeded"
    assert run.results() == {"number": 1, "fine": 6}
    assert run.reason.startswith("task fail failed: ValueError: bad input 1")
    assert "skipped: after bad" in run.reason


def test_retries_record_each_attempt(localtailr_home, tmp_path):
    run = wt.retrying(str(tmp_path))
    assert run.wait(TIMEOUT) == "succeeded", run.reason
    attempts = [t for t in run.tasks() if t["task_name"] == "flaky"]
    assert [(t["attempt"], t["state"]) for t in attempts] == [(1, "failed"), (2, "succeeded")]
    assert run.results()["add"] == "ok!"


def test_rerun_from_failures_reuses_successes(localtailr_home, tmp_path):
    first = wt.rerun_me(str(tmp_path))
    assert first.wait(TIMEOUT) == "failed"
    assert by_name(first)["needs_marker"]["state"] == "failed"
    (tmp_path / "marker").write_text("now")
    second = first.rerun_failed()
    assert second.run_id != first.run_id
    assert second.wait(TIMEOUT) == "succeeded", second.reason
    assert second.results() == {"counted": 4, "needs_marker": 40}
    assert (tmp_path / "good.count").read_text() == "1"  # not run again
    reused = by_name(second)["counted"]
    assert reused["reason"] == f"reused from run {by_name(first)['counted']['run_id']}"


def test_rerun_of_an_active_run_is_refused(localtailr_home):
    run = wt.sleepy(save_only=True)
    ctx = context()
    run_id = jobs.start(ctx, run["name"])["run_id"]
    with pytest.raises(ValueError, match="still pending"):
        jobs.rerun(ctx, run_id, failed_only=True)


def _stop_once_running(run: WorkflowRun, task: str) -> None:
    home = run.home
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        row = store.connection(home).execute(
            "SELECT state FROM runs WHERE parent_run_id = ? AND task_name = ?",
            (run.run_id, task),
        ).fetchone()
        if row and row[0] == "running":
            run.stop()
            return
        time.sleep(0.02)


def test_stop_kills_running_tasks(localtailr_home):
    run = wt.sleepy(60)
    stopper = threading.Thread(target=_stop_once_running, args=(run, "sleep"))
    stopper.start()
    assert run.wait(TIMEOUT) == "killed"
    stopper.join()
    assert run.reason == "stopped by root"
    assert by_name(run)["sleep"]["state"] == "killed"
    conn = store.connection(localtailr_home.home)
    assert conn.execute("SELECT count(*) FROM runs WHERE parent_run_id = ? AND state IN "
                        "('pending', 'running')", (run.run_id,)).fetchone()[0] == 0


def test_fail_after_ends_a_slow_run(localtailr_home):
    run = wt.too_slow()
    assert run.wait(TIMEOUT) == "failed"
    assert run.reason == "fail_after: not finished within 1s"
    assert by_name(run)["sleep"]["state"] == "killed"


def test_unpicklable_result_fails_that_task_clearly(localtailr_home):
    run = wt.bad_result()
    assert run.wait(TIMEOUT) == "failed"
    tasks = by_name(run)
    assert "returned a result that cannot be pickled" in tasks["unpicklable"]["error"]
    assert tasks["add"]["state"] == "skipped"


def test_task_module_missing_in_the_child(localtailr_home, tmp_path, monkeypatch):
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "vanishing_wf.py").write_text(textwrap.dedent("""
        from localtailr import task, workflow

        @task()
        def hello():
            return "hi"

        @workflow(name="Vanishing")
        def vanishing():
            hello()
    """))
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module("vanishing_wf")
    job = module.vanishing(save_only=True)
    shutil.rmtree(folder)
    sys.modules.pop("vanishing_wf", None)
    run_id = jobs.start(context(), job["name"])["run_id"]
    run = WorkflowRun(localtailr_home.home, run_id, job["name"])
    assert run.wait(TIMEOUT) == "failed"
    error = by_name(run)["hello"]["error"]
    assert "cannot import task function 'vanishing_wf:hello'" in error
    assert "ModuleNotFoundError" in error


def test_workflow_body_raising_saves_nothing(localtailr_home):
    with pytest.raises(WorkflowBuildError, match="broken body"):
        wt.body_raises()
    conn = store.connection(localtailr_home.home)
    assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_saved_definition_follows_the_contract(localtailr_home):
    job = wt.chain(save_only=True)
    d = job["definition"]
    assert d["type"] == "workflow" and d["name"] == "chain"
    assert [n["name"] for n in d["workflow"]["nodes"]] == ["number", "add", "sum", "total"]
    assert d["entrypoint"]["module"] == "support.wf_runtime_tasks"
    assert d["schedule"] is None and "python_requirements" in d["image"]
    conn = store.connection(localtailr_home.home)
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    json.dumps(d)


def test_system_arguments(localtailr_home):
    job = wt.system_args(save_only=True)
    started = jobs.start(context(), job["name"], params={"rundate": "2026-04-09"})
    run = WorkflowRun(localtailr_home.home, started["run_id"], job["name"])
    assert run.wait(TIMEOUT) == "succeeded", run.reason
    got = run.results()["sys"]
    assert got["rundate"] == "2026-04-09"
    assert got["batch_name"] == "System Args" and got["job_name"] == "sys"


def test_a_new_workflow_is_advanced_when_the_daemon_is_woken(localtailr_home, monkeypatch):
    """The submit's wake-up makes the daemon create and start the first tasks at once, not
    at its periodic pass (which this daemon, stepped by hand, never reaches)."""
    from localtailr.runtime import client
    from localtailr.runtime.daemon import loop

    monkeypatch.setattr(client, "ensure_daemon", lambda home, **_: None)
    run = wt.chain()  # saved, parent run pending, wake-up sent (no daemon listens yet)
    d = loop.Daemon(localtailr_home.home)
    d.next_periodic = d.next_tick = d.next_services = float("inf")
    try:
        d.step(woken=False)
        assert run.tasks() == []
        d.step(woken=True)
        tasks = run.tasks()
        assert [t["task_name"] for t in tasks] == ["number"]
        assert tasks[0]["state"] != "pending"  # picked up: building its image, or running
    finally:
        d.shutdown()


@pytest.mark.parametrize("wake", [True, False])
def test_advancing_wakes_the_daemon_unless_the_daemon_advances(localtailr_home, monkeypatch,
                                                                wake):
    """A task's run made pending wakes the daemon; the daemon's own pass says ``wake``
    False (it starts pending runs right after), so that it does not wake itself again."""
    from localtailr.runtime import client
    from localtailr.runtime.workflows import engine
    from localtailr.store import wakeup

    monkeypatch.setattr(client, "ensure_daemon", lambda home, **_: None)
    home = localtailr_home.home
    run = wt.chain()  # saved, parent run pending
    listener = wakeup.Listener(home)
    try:
        listener.drain()  # the submit's own wake-up
        assert engine.advance_all(home, wake=wake) == {run.run_id: "running"}
        assert [t["task_name"] for t in run.tasks()] == ["number"]
        assert (listener.drain() > 0) == wake
    finally:
        listener.close()
