"""Issue 4, runs: what run, start, stop, restart, rerun and rm do to the store; runs
listing with filters; wait (Pachyderm's inspect_job with wait) on a run whose state this
test drives as the daemon would."""

import threading
import time

import pytest
from support import jobs_entry

from localtailr import BatchJob, Service
from localtailr.core.errors import NotFoundError
from localtailr.platform import jobs
from localtailr.platform.context import context

# These tests play the daemon themselves: they start runs through the service layer,
# which (unlike the SDK's run()) never starts a daemon.


def run_job(job, **params):
    return jobs.run(context(environment=job.environment.value), job.to_dict(), params=params)


def start(job):
    return jobs.start(context(environment=job.environment.value), job.job_name)


def set_state(run_id, state, reason=None, **columns):
    """Do what the daemon does: move a run to ``state`` and record the event."""
    ctx = context()
    sets = ", ".join(f"{k} = ?" for k in columns)
    with ctx.conn:
        ctx.conn.execute(
            f"UPDATE runs SET state = ?, reason = ?{', ' + sets if sets else ''} WHERE run_id = ?",
            (state, reason, *columns.values(), run_id),
        )
        ctx.conn.execute("INSERT INTO run_events (run_id, at, state, detail) VALUES (?, ?, ?, ?)",
                         (run_id, time.time(), state, reason))


def events(run_id):
    return [(e["state"], e["detail"]) for e in jobs.get_run(context(), run_id)["events"]]


def test_run_saves_and_creates_a_pending_run(localtailr_home):
    run = run_job(BatchJob("Daily Report", jobs_entry.hello), rundate="2024-01-02")
    assert run["state"] == "pending" and run["job"] == "daily-report" and run["version"] == 1
    assert run["params"] == {"rundate": "2024-01-02"} and run["trigger"] == "manual"
    assert events(run["run_id"]) == [("pending", "manual by root")]
    assert jobs.get(context(), "daily-report")["status"] == "pending"


def test_a_batch_job_starts_a_new_run_each_time(localtailr_home):
    job = BatchJob("b", jobs_entry.hello)
    first = run_job(job)
    second = start(job)
    assert second["run_id"] != first["run_id"]


def test_a_service_is_not_started_twice(localtailr_home):
    svc = Service("s", jobs_entry.serve)
    run = run_job(svc)
    assert jobs.get(context(), "s")["desired_state"] == "running"
    assert start(svc)["run_id"] == run["run_id"]
    set_state(run["run_id"], "running", pid=1234, url="http://127.0.0.1:5000/")
    assert start(svc)["run_id"] == run["run_id"]
    assert svc.status == "running"
    assert jobs.get(context(), "s")["url"] == "http://127.0.0.1:5000/"


def test_stop_of_a_pending_run_ends_it_and_of_a_running_one_asks_the_daemon(localtailr_home):
    svc = Service("s", jobs_entry.serve)
    pending = run_job(svc)["run_id"]
    [stopped] = svc.stop()
    assert stopped["state"] == "killed" and stopped["reason"] == "stopped by root"
    assert svc.status == "stopped"
    running = start(svc)["run_id"]
    set_state(running, "running")
    [asked] = jobs.stop(context(), "s")  # the service layer: the SDK face also starts the daemon
    assert asked["state"] == "running"  # the daemon kills it and records "killed"
    assert events(running)[-1] == ("stop-requested", "stopped by root")
    assert jobs.get(context(), "s")["desired_state"] == "stopped"
    assert pending != running


def test_run_of_a_new_version_replaces_the_running_service(localtailr_home):
    svc = Service("s", jobs_entry.serve)
    old = run_job(svc)["run_id"]
    set_state(old, "running")
    new = run_job(svc)
    assert new["run_id"] != old and new["version"] == 2
    assert events(old)[-1] == ("stop-requested", "new version 2 by root")


def test_restart(localtailr_home):
    svc = Service("s", jobs_entry.serve)
    old = run_job(svc)["run_id"]
    set_state(old, "running")
    new = jobs.restart(context(), "s")
    assert new["trigger"] == "restart" and new["state"] == "pending"
    assert events(old)[-1] == ("stop-requested", "restart by root")


def test_rerun_repeats_version_and_parameters(localtailr_home):
    job = BatchJob("b", jobs_entry.hello)
    first = run_job(job, rundate="2024-03-04")["run_id"]
    job.save()  # version 2 is now current
    set_state(first, "failed", "exit code 1", exit_code=1)
    again = jobs.rerun(context(), first)
    assert (again["version"], again["params"], again["trigger"]) == (1, {"rundate": "2024-03-04"}, "rerun")
    assert events(again["run_id"]) == [("pending", f"rerun of run {first} by root")]


def test_rm_refuses_while_running_then_removes_everything(localtailr_home):
    svc = Service("s", jobs_entry.serve)
    run = run_job(svc)["run_id"]
    set_state(run, "running")
    with pytest.raises(ValueError, match=f"has active runs \\({run}\\); stop it first"):
        svc.delete()
    set_state(run, "killed", "stopped by root")
    run_dir = localtailr_home.home.run_dir(run)
    run_dir.mkdir(parents=True)
    (run_dir / "stdout").write_text("x\n")
    svc.delete()
    assert not run_dir.exists()
    with pytest.raises(NotFoundError):
        jobs.get(context(), "s")
    with pytest.raises(NotFoundError, match=f"run {run} not found"):
        jobs.get_run(context(), run)


def test_runs_listing_filters_and_pages(localtailr_home):
    a, b = BatchJob("a", jobs_entry.hello), BatchJob("b", jobs_entry.hello)
    ids = [run_job(a)["run_id"] for _ in range(3)] + [run_job(b)["run_id"] for _ in range(2)]
    set_state(ids[0], "succeeded", "exit code 0", exit_code=0)
    set_state(ids[1], "failed", "exit code 1", exit_code=1)
    run_job(BatchJob("p", jobs_entry.hello, environment="prod"))
    ctx = context()
    assert [r["run_id"] for r in jobs.runs(ctx)] == ids[::-1]
    assert [r["run_id"] for r in jobs.runs(ctx, "a")] == ids[2::-1]
    assert [r["run_id"] for r in jobs.runs(ctx, state="failed")] == [ids[1]]
    assert [r["run_id"] for r in jobs.runs(ctx, state="terminal")] == [ids[1], ids[0]]
    assert [r["run_id"] for r in jobs.runs(ctx, state="active")] == ids[:1:-1]
    assert [r["run_id"] for r in jobs.runs(ctx, limit=2, offset=1)] == [ids[3], ids[2]]
    assert len(jobs.runs(ctx, all_environments=True)) == 6
    assert [r["environment"] for r in jobs.runs(ctx, environment="prod")] == ["prod"]
    assert len(jobs.runs(context(environment="prod"))) == 1
    with pytest.raises(ValueError, match="invalid state 'done'"):
        jobs.runs(ctx, state="done")
    with pytest.raises(ValueError, match="invalid limit -1"):
        jobs.runs(ctx, limit=-1)
    assert [r["job"] for r in BatchJob("a", jobs_entry.hello).runs(limit=1)] == ["a"]


def test_wait_returns_when_the_run_ends(localtailr_home):
    run = run_job(BatchJob("b", jobs_entry.hello))["run_id"]

    def daemon():
        for state in ("building", "starting", "running"):
            set_state(run, state)
            time.sleep(0.05)
        set_state(run, "succeeded", "exit code 0", exit_code=0)

    thread = threading.Thread(target=daemon)
    thread.start()
    done = jobs.wait(context(), run, timeout=60)
    thread.join()
    assert done["state"] == "succeeded" and done["exit_code"] == 0
    assert [e[0] for e in events(run)] == ["pending", "building", "starting", "running", "succeeded"]


def test_wait_times_out_with_a_clear_error(localtailr_home):
    run = run_job(BatchJob("b", jobs_entry.hello))["run_id"]
    with pytest.raises(TimeoutError, match=f"run {run} is still pending after 0.1 s"):
        jobs.wait(context(), run, timeout=0.1)
    with pytest.raises(NotFoundError, match="run 999 not found"):
        jobs.wait(context(), 999)


def test_crash_looping_is_shown_as_the_status(localtailr_home):
    svc = Service("s", jobs_entry.serve)
    run = run_job(svc)["run_id"]
    set_state(run, "running")
    set_state(run, "crash-looping", "exit code 3, restarting in 4 s")
    ctx = context()
    ctx.conn.execute("UPDATE runs SET state = 'running' WHERE run_id = ?", (run,))
    assert svc.status == "crash-looping"
