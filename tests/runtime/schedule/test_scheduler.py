"""Schedules: fire times become runs exactly once, with a clock the test moves.

Most tests call ``scheduler.tick`` directly against a real store; the last ones let the
real daemon fire and run them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from support import wf_runtime_tasks as wt

from localtailr import Schedule, store
from localtailr.platform import jobs, schedules
from localtailr.platform.context import context
from localtailr.runtime.schedule import scheduler
from localtailr.sdk.workflow_run import WorkflowRun

TIMEOUT = 120


@pytest.fixture(autouse=True)
def _stop_daemon(localtailr_home):
    yield
    from localtailr.runtime.daemon import control

    control.stop(localtailr_home.home)


def utc(*args) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def runs(home, trigger: str | None = None) -> list:
    conn = store.connection(home)
    sql = "SELECT * FROM runs WHERE parent_run_id IS NULL"
    args: tuple = ()
    if trigger:
        sql += " AND trigger = ?"
        args = (trigger,)
    return conn.execute(sql + " ORDER BY run_id", args).fetchall()


def save_scheduled(schedule: Schedule) -> dict:
    return wt.every_minute(save_only=True, schedule=schedule)


def test_impossible_date_is_refused():
    with pytest.raises(ValueError, match="day_of_month=30 never happens in Feb"):
        Schedule(day_of_month=30, in_month=["Feb"])
    with pytest.raises(ValueError):
        Schedule(cron_expression="0 0 0 30 2 *")


def test_unknown_run_after_job_is_refused_and_nothing_saved(localtailr_home):
    with pytest.raises(ValueError, match="run_after_job_name='nope': no job of that name"):
        save_scheduled(Schedule(run_after_job_name="nope"))
    conn = store.connection(localtailr_home.home)
    assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM schedules").fetchone()[0] == 0


def test_saving_sets_next_fire_and_a_new_version_keeps_it(localtailr_home):
    clock = localtailr_home.clock
    clock.freeze(utc(2026, 1, 5, 9, 0, 30))
    save_scheduled(Schedule(at_minutes=[0, 15, 30, 45], allow_overlap=True))  # no daemon: all pending
    conn = store.connection(localtailr_home.home)
    job_id = conn.execute("SELECT job_id FROM jobs").fetchone()[0]
    assert schedules.next_fire(conn, job_id) == utc(2026, 1, 5, 9, 15)
    clock.advance(3600)
    save_scheduled(Schedule(at_minutes=[0, 15, 30, 45], allow_overlap=True))  # no daemon: all pending  # unchanged: nothing is skipped
    assert schedules.next_fire(conn, job_id) == utc(2026, 1, 5, 9, 15)
    save_scheduled(Schedule(at_hours=[12]))  # changed: next fire after now
    assert schedules.next_fire(conn, job_id) == utc(2026, 1, 5, 12, 0)


def test_advancing_the_clock_fires_exactly_the_due_runs(localtailr_home):
    clock = localtailr_home.clock
    clock.freeze(utc(2026, 1, 5, 9, 0, 30))
    save_scheduled(Schedule(at_minutes=[0, 15, 30, 45], allow_overlap=True))  # no daemon: all pending
    home = localtailr_home.home
    for _ in range(60):
        clock.advance(60)
        scheduler.tick(home)
    fired = [r["scheduled_for"] for r in runs(home, "schedule")]
    assert fired == [utc(2026, 1, 5, 9, 15), utc(2026, 1, 5, 9, 30),
                     utc(2026, 1, 5, 9, 45), utc(2026, 1, 5, 10, 0)]
    assert all(r["state"] == "pending" for r in runs(home))


def test_a_fire_time_fires_once_however_often_tick_runs(localtailr_home):
    clock = localtailr_home.clock
    clock.freeze(utc(2026, 1, 5, 9, 0, 30))
    save_scheduled(Schedule(at_minutes=[1]))
    home = localtailr_home.home
    clock.advance(60)
    assert len(scheduler.tick(home)) == 1
    assert scheduler.tick(home) == []
    store.forget(home)  # a restarted daemon: a new connection, nothing in memory
    assert scheduler.tick(home) == []
    assert len(runs(home)) == 1


def test_concurrent_ticks_from_several_processes_fire_once(localtailr_home):
    clock = localtailr_home.clock
    clock.freeze(utc(2026, 1, 5, 9, 0, 30))
    for i in range(5):
        wt.scheduled(f"job {i}", Schedule(at_minutes=[1]))(save_only=True)
    clock.advance(60)
    code = ("import sys; from localtailr.core.home import Home; "
            "from localtailr.runtime.schedule import scheduler; "
            "print(len(scheduler.tick(Home.current())))")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    counts = [int(p.communicate(timeout=TIMEOUT)[0]) for p in procs]
    assert sum(counts) == 5
    assert sorted(r["job_id"] for r in runs(localtailr_home.home)) == [1, 2, 3, 4, 5]


def test_missed_runs_fire_once_not_in_a_burst(localtailr_home):
    clock = localtailr_home.clock
    clock.freeze(utc(2026, 1, 5, 9, 0, 30))
    save_scheduled(Schedule(cron_expression="0 * * * * *", allow_overlap=True))
    home = localtailr_home.home
    clock.advance(600)  # the daemon was down for ten minutes
    created = scheduler.tick(home)
    assert len(created) == 1
    assert runs(home)[0]["scheduled_for"] == utc(2026, 1, 5, 9, 10)
    clock.advance(600)
    assert len(scheduler.tick(home, catchup="all")) == 10


def test_spring_forward_fires_once(localtailr_home):
    ny = ZoneInfo("America/New_York")
    clock = localtailr_home.clock
    clock.freeze(datetime(2024, 3, 9, 12, 0, tzinfo=ny))
    save_scheduled(Schedule(at_hours=[2], at_minutes=[30], timezone="America/New_York",
                            allow_overlap=True))
    home = localtailr_home.home
    for _ in range(3 * 24):
        clock.advance(3600)
        scheduler.tick(home)
    fired = [datetime.fromtimestamp(r["scheduled_for"], ny) for r in runs(home)]
    assert [(f.day, f.hour, f.minute) for f in fired] == [(10, 3, 0), (11, 2, 30), (12, 2, 30)]


def test_run_now_is_a_manual_pending_run(localtailr_home):
    save_scheduled(Schedule(at_hours=[3]))
    run_id = scheduler.run_now(localtailr_home.home, 1)
    (row,) = runs(localtailr_home.home)
    assert (row["run_id"], row["trigger"], row["state"]) == (run_id, "manual", "pending")


def test_scheduled_workflow_runs_with_the_fire_time_as_rundate(localtailr_home):
    clock = localtailr_home.clock
    clock.freeze(utc(2026, 3, 3, 23, 59, 30))
    job = wt.system_args(save_only=True, schedule=Schedule(cron_expression="0 0 0 * * *"))
    from localtailr.runtime.daemon import control

    control.ensure_running(localtailr_home.home, quiet=True)
    clock.advance(60)  # the daemon's tick sees the moved clock
    row = _wait_for_run(localtailr_home.home, "schedule")
    run = WorkflowRun(localtailr_home.home, row["run_id"], job["name"])
    assert run.wait(TIMEOUT) == "succeeded", run.reason
    got = run.results()["sys"]
    assert got["rundate"] == "2026-03-04"
    assert got["scheduled_time"].startswith("2026-03-04T00:00:00")


def test_run_after_another_job(localtailr_home):
    job = wt.chain(save_only=True)
    wt.scheduled("After Chain", Schedule(run_after_job_name="Chain"))(save_only=True)
    wt.scheduled("On Failure", Schedule(run_after_job_name="Chain",
                                        run_after_job_condition="failure"))(save_only=True)
    started = jobs.start(context(), job["name"])
    first = WorkflowRun(localtailr_home.home, started["run_id"], job["name"])
    assert first.wait(TIMEOUT) == "succeeded"
    row = _wait_for_run(localtailr_home.home, "after:chain")
    conn = store.connection(localtailr_home.home)
    name = conn.execute("SELECT name FROM jobs WHERE job_id = ?", (row["job_id"],)).fetchone()[0]
    assert name == "after-chain"
    assert WorkflowRun(localtailr_home.home, row["run_id"], name).wait(TIMEOUT) == "succeeded"
    assert len(runs(localtailr_home.home, "after:chain")) == 1  # on failure: not fired


def _wait_for_run(home, trigger: str):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = runs(home, trigger)
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no run with trigger {trigger!r} within {TIMEOUT}s")


def test_a_tick_with_nothing_due_takes_no_write_transaction(localtailr_home):
    """The daemon ticks every second: when no fire is due, a tick writes nothing (no BEGIN
    IMMEDIATE holding the store's write lock, no commit); when one is, it fires."""
    clock = localtailr_home.clock
    clock.freeze(utc(2026, 1, 5, 9, 0, 30))
    save_scheduled(Schedule(at_minutes=[15]))
    home = localtailr_home.home
    conn = store.connection(home)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        clock.advance(60)
        assert scheduler.tick(home) == []
    finally:
        conn.set_trace_callback(None)
    assert statements and not [s for s in statements if s.split()[0].upper() in
                               ("BEGIN", "COMMIT", "INSERT", "UPDATE")], statements
    clock.advance(15 * 60)
    assert len(scheduler.tick(home)) == 1
