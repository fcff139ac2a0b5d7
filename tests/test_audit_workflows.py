"""Audit of issue 5 (workflows and schedules): the points no other test showed."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime

import pytest
from support import runtime_support
from support import wf_runtime_tasks as wt

from localtailr import Schedule, store, workflow
from localtailr.runtime.daemon import control
from localtailr.runtime.schedule import scheduler

TIMEOUT = 120


def utc(*args) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def top_runs(home, trigger: str | None = None) -> list:
    sql = "SELECT r.*, j.name FROM runs r JOIN jobs j ON j.job_id = r.job_id WHERE r.parent_run_id IS NULL"
    args: tuple = ()
    if trigger:
        sql += " AND r.trigger = ?"
        args = (trigger,)
    return store.connection(home).execute(sql + " ORDER BY r.run_id", args).fetchall()


def wait_for(predicate, timeout: float = TIMEOUT, what: str = "condition"):
    return runtime_support.wait_for(predicate, timeout, what)


# --- run_after conditions -----------------------------------------------------------------


def _ended_run(conn, job_id: int, state: str) -> None:
    at = time.time() + 1
    conn.execute("INSERT INTO runs (job_id, version, state, run_as, environment, trigger, "
                 "created_at, started_at, ended_at, reason) VALUES (?, 1, ?, 0, 'dev', 'manual', ?, ?, ?, ?)",
                 (job_id, state, at, at, at, state))


def test_run_after_success_failure_and_completion(localtailr_home):
    home = localtailr_home.home
    conn = store.connection(home)
    chain = wt.chain(save_only=True)
    chain_id = conn.execute("SELECT job_id FROM jobs WHERE name = ?", (chain["name"],)).fetchone()[0]
    # no daemon: the triggered runs stay pending, so they are let overlap
    wt.scheduled("On Success", Schedule(run_after_job_name="Chain",
                                        allow_overlap=True))(save_only=True)
    wt.scheduled("On Failure", Schedule(run_after_job_name="Chain", allow_overlap=True,
                                        run_after_job_condition="failure"))(save_only=True)
    wt.scheduled("On Completion", Schedule(run_after_job_name="chain", allow_overlap=True,
                                           run_after_job_condition="completion"))(save_only=True)
    wt.scheduled("By Id", Schedule(run_after_job_uuid=str(chain_id), allow_overlap=True,
                                   run_after_job_condition="failure"))(save_only=True)

    def fired() -> list[str]:
        return [r["name"] for r in top_runs(home, "after:chain")]

    assert scheduler.tick(home) == [] and fired() == []  # nothing ended yet
    _ended_run(conn, chain_id, "failed")
    assert len(scheduler.tick(home)) == 3
    assert sorted(fired()) == ["by-id", "on-completion", "on-failure"]
    assert scheduler.tick(home) == []  # each ended run triggers once
    _ended_run(conn, chain_id, "succeeded")
    scheduler.tick(home)
    assert sorted(fired()) == ["by-id", "on-completion", "on-completion", "on-failure", "on-success"]
    _ended_run(conn, chain_id, "killed")  # neither a success nor ... a completion all the same
    scheduler.tick(home)
    assert fired().count("on-completion") == 3 and fired().count("on-success") == 1
    with pytest.raises(ValueError, match="run_after_job_condition"):
        Schedule(run_after_job_name="Chain", run_after_job_condition="sometimes")


# --- catch-up, configurable -------------------------------------------------------------


@pytest.mark.parametrize(("setting", "fired"), [(None, 1), ("once", 1), ("all", 10), ("none", 0)])
def test_catchup_is_configured_by_the_variable(localtailr_home, monkeypatch, setting, fired):
    if setting is None:
        monkeypatch.delenv(scheduler.CATCHUP_VAR, raising=False)
    else:
        monkeypatch.setenv(scheduler.CATCHUP_VAR, setting)
    clock = localtailr_home.clock
    clock.freeze(utc(2026, 1, 5, 9, 30))
    # no daemon: the fired runs stay pending, so they are let overlap
    wt.scheduled("Hourly", Schedule(at_minutes=[0], allow_overlap=True))(save_only=True)
    clock.advance(10 * 3600)  # ten fire times (10:00 ... 19:00) passed while nobody ticked
    created = scheduler.tick(localtailr_home.home)
    assert len(created) == fired
    if fired == 1:  # the latest missed time, once
        assert top_runs(localtailr_home.home)[0]["scheduled_for"] == utc(2026, 1, 5, 19, 0)
    assert scheduler.tick(localtailr_home.home) == []
    clock.advance(1800)  # 20:00, on time: it fires whatever the setting
    assert len(scheduler.tick(localtailr_home.home)) == 1


def test_bad_catchup_setting_is_refused(localtailr_home, monkeypatch):
    monkeypatch.setenv(scheduler.CATCHUP_VAR, "sometimes")
    wt.every_minute(save_only=True)
    with pytest.raises(ValueError, match="catchup='sometimes': use one of once, all, none"):
        scheduler.tick(localtailr_home.home)


# --- exactly once across a real daemon's kill -9 and restart --------------------------------


def _heartbeat(home) -> float:
    row = store.connection(home).execute(
        "SELECT value FROM tags WHERE name = 'scheduler.heartbeat'").fetchone()
    return float(row[0]) if row else 0.0


def test_a_killed_and_restarted_daemon_fires_nothing_twice(localtailr_home, monkeypatch):
    monkeypatch.setenv("LOCALTAILR_STOP_GRACE", "2")
    home = localtailr_home.home
    clock = localtailr_home.clock
    clock.freeze(utc(2026, 1, 5, 9, 0, 30))
    wt.every_minute(save_only=True)
    first = control.ensure_running(home, quiet=True)
    try:
        clock.advance(60)
        wait_for(lambda: top_runs(home, "schedule"), what="the 09:01 run")
        os.kill(first["pid"], signal.SIGKILL)
        wait_for(lambda: not control.lock_held(home), what="the lock to be released")
        second = control.ensure_running(home, quiet=True)
        assert second["pid"] != first["pid"]
        since = time.time()
        wait_for(lambda: _heartbeat(home) > since + 1, what="two scheduler ticks of the new daemon")
        assert [r["scheduled_for"] for r in top_runs(home, "schedule")] == [utc(2026, 1, 5, 9, 1)]
        clock.advance(60)
        wait_for(lambda: len(top_runs(home, "schedule")) >= 2, what="the 09:02 run")
        since = time.time()
        wait_for(lambda: _heartbeat(home) > since + 1, what="two more scheduler ticks")
        assert [r["scheduled_for"] for r in top_runs(home, "schedule")] == [
            utc(2026, 1, 5, 9, 1), utc(2026, 1, 5, 9, 2)]
    finally:
        control.stop(home)


# --- bad input ---------------------------------------------------------------------------


@workflow(name="Unpicklable Argument")
def unpicklable_argument():
    wt.add(threading.Lock(), 1)


def test_a_non_picklable_argument_is_refused_clearly_and_nothing_saved(localtailr_home):
    for kwargs in ({}, {"save_only": True}):
        with pytest.raises(ValueError, match="cannot be pickled") as info:
            unpicklable_argument(**kwargs)
        assert "add" in str(info.value) and "lock" in str(info.value).lower()
    conn = store.connection(localtailr_home.home)
    for table in ("jobs", "job_versions", "runs", "schedules"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


def test_feb_30_and_other_impossible_dates_are_refused_and_nothing_saved(localtailr_home):
    for make in (lambda: Schedule(day_of_month=30, in_month=["Feb"]),
                 lambda: Schedule(day_of_month=31, in_month=["Apr", "Jun"]),
                 lambda: Schedule(cron_expression="0 0 0 30 2 *")):
        with pytest.raises(ValueError, match="never"):
            make()
    assert Schedule(day_of_month=29, in_month=["Feb"]).get_cron_string() == "0 0 0 29 2 *"
    assert Schedule(day_of_month=31, in_month=["Apr", "May"]).get_cron_string() == "0 0 0 31 4,5 *"


# --- expire_after and inspection task by task --------------------------------------------


@workflow(name="Expiring", expire_after="1h")
def expiring():
    wt.sleep(600)


def test_expire_after_ends_a_run_that_takes_too_long(localtailr_home):
    # The hour passes on localtailr's clock once the task runs (no race with a busy machine).
    run = expiring()
    try:
        wait_for(lambda: [t["state"] for t in run.tasks()] == ["running"], what="the task running")
        localtailr_home.clock.advance(2 * 3600)
        assert run.wait(TIMEOUT) == "killed"
        assert run.reason == "expire_after: not finished within 3600s"
        (task,) = run.tasks()
        assert task["state"] == "killed"
    finally:
        control.stop(localtailr_home.home)


@workflow(name="Printing")
def printing():
    wt.add(wt.number(2), 3)


def test_a_run_is_inspectable_task_by_task(localtailr_home):
    home = localtailr_home.home
    run = printing()
    try:
        assert run.wait(TIMEOUT) == "succeeded", run.tasks()
        tasks = {t["task_name"]: t for t in run.tasks()}
        assert set(tasks) == {"number", "add"}
        for t in tasks.values():
            assert t["state"] == "succeeded" and t["reason"] == "exit code 0"
            assert t["created_at"] <= t["started_at"] <= t["ended_at"]
            assert t["peak_rss"] and t["peak_rss"] > 0
            assert home.run_dir(t["run_id"]).is_dir()  # its logs: runs/<id>/stdout, stderr
        assert tasks["number"]["result_repr"] == "2" and tasks["add"]["result_repr"] == "5"
        assert tasks["number"]["ended_at"] <= tasks["add"]["started_at"]
    finally:
        control.stop(home)
