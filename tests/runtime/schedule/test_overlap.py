"""Issue 9: a scheduled job whose run is still active does not start another at each fire.
The fire is skipped and the skip recorded on the active run (Airflow's max_active_runs=1);
``Schedule(allow_overlap=True)`` opts into overlapping runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support import runtime_support
from support.runtime_support import entry, wait_for, wait_state

from localtailr import Schedule, store
from localtailr.platform import jobs
from localtailr.platform.context import context
from localtailr.runtime.schedule import scheduler
from localtailr.store import runs as run_state

daemon = runtime_support.daemon  # the fixture: a real daemon for the test's home


def _save(schedule: Schedule, qualname: str = "hello") -> None:
    jobs.save(context(), {"name": "every", "type": "batch", "entrypoint": entry(qualname),
                          "image": {"python_version": "auto"}, "schedule": schedule.to_dict()})


def _runs(home) -> list:
    return store.connection(home).execute(
        "SELECT run_id, state, scheduled_for FROM runs ORDER BY run_id").fetchall()


def _skips(home) -> list[tuple[int, str]]:
    return [(r[0], r[1]) for r in store.connection(home).execute(
        "SELECT run_id, detail FROM run_events WHERE state = 'fire-skipped' ORDER BY rowid")]


def test_a_fire_while_a_run_is_active_is_skipped_and_recorded(localtailr_home):
    clock, home = localtailr_home.clock, localtailr_home.home
    clock.freeze(datetime(2026, 1, 5, 9, 0, 30, tzinfo=UTC).timestamp())
    _save(Schedule(cron_expression="0 * * * * *"))  # every minute
    clock.advance(60)
    assert len(scheduler.tick(home)) == 1
    first = _runs(home)[0]["run_id"]
    for _ in range(3):  # the run is still pending (no daemon), then running
        clock.advance(60)
        assert scheduler.tick(home) == []
        run_state.transition(home, first, "running")
    assert len(_runs(home)) == 1
    skips = _skips(home)
    assert [s[0] for s in skips] == [first] * 3
    assert "2026-01-05T09:02:00Z" in skips[0][1] and f"run {first} is still active" in skips[0][1]
    assert "allow_overlap" in skips[0][1]
    run_state.transition(home, first, "succeeded", "exit code 0")
    clock.advance(60)
    assert len(scheduler.tick(home)) == 1  # the next fire after it ended starts a run


def test_allow_overlap_starts_a_run_at_every_fire(localtailr_home):
    clock, home = localtailr_home.clock, localtailr_home.home
    clock.freeze(datetime(2026, 1, 5, 9, 0, 30, tzinfo=UTC).timestamp())
    _save(Schedule(cron_expression="0 * * * * *", allow_overlap=True))
    for _ in range(3):
        clock.advance(60)
        assert len(scheduler.tick(home)) == 1
    assert len(_runs(home)) == 3 and _skips(home) == []


def test_allow_overlap_is_validated_and_kept():
    with pytest.raises(ValueError, match="allow_overlap"):
        Schedule(cron_expression="0 * * * * *", allow_overlap="yes")
    s = Schedule(cron_expression="0 * * * * *", allow_overlap=True)
    assert Schedule.from_dict(s.to_dict()) == s
    assert s != Schedule(cron_expression="0 * * * * *")
    assert "allow_overlap=True" in repr(s)


@pytest.mark.slow
def test_a_per_second_schedule_of_a_long_job_runs_one_at_a_time(localtailr_home, daemon):
    home = localtailr_home.home
    _save(Schedule(cron_expression="* * * * * *"), "sleep_forever")
    wait_for(lambda: len(_skips(home)) >= 4, 120, "four skipped fires")
    runs = _runs(home)
    assert len(runs) == 1, [dict(r) for r in runs]
    wait_state(home, runs[0]["run_id"], "running")
    jobs.stop(context(), "every")
