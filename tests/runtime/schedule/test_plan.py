"""plan(): which fire times are due, and the schedule's next fire time."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localtailr.core.cron import next_fire_ts
from localtailr.runtime.schedule.plan import plan

HOURLY = "0 0 * * * *"
T0 = datetime(2024, 6, 10, 8, tzinfo=UTC).timestamp()  # 08:00 UTC, a fire time of HOURLY
H = 3600.0


def row(cron=HOURLY, next_fire=T0, last_fire=None, timezone=None):
    return {"cron": cron, "timezone": timezone, "next_fire": next_fire, "last_fire": last_fire}


def test_not_due_yet():
    assert plan(row(), T0 - 1) == ([], T0)


def test_due_on_time_fires_once_and_moves_on():
    assert plan(row(), T0 + 0.2) == ([T0], T0 + H)
    assert plan(row(), T0) == ([T0], T0 + H)  # due exactly now


def test_missed_runs_fire_once_by_default():
    now = T0 + 5 * H + 60  # down from before 08:00 until 13:01
    assert plan(row(), now) == ([T0 + 5 * H], T0 + 6 * H)
    assert plan(row(), now, catchup="once") == ([T0 + 5 * H], T0 + 6 * H)


def test_missed_runs_all():
    fires, nxt = plan(row(), T0 + 5 * H + 60, catchup="all")
    assert fires == [T0 + i * H for i in range(6)]
    assert nxt == T0 + 6 * H


def test_missed_runs_all_comes_in_bounded_batches():
    r = row()
    now = T0 + 9 * H + 1
    seen = []
    for _ in range(5):
        fires, nxt = plan(r, now, catchup="all", max_fires=4)
        seen += fires
        r = row(next_fire=nxt, last_fire=fires[-1] if fires else r["last_fire"])
        if nxt > now:
            break
    assert seen == [T0 + i * H for i in range(10)]
    assert r["next_fire"] == T0 + 10 * H


def test_missed_runs_none_skips_all_but_the_recent():
    assert plan(row(), T0 + 5 * H + 61, catchup="none") == ([], T0 + 6 * H)
    assert plan(row(), T0 + 5 * H + 30, catchup="none") == ([T0 + 5 * H], T0 + 6 * H)
    assert plan(row(), T0 + 30, catchup="none") == ([T0], T0 + H)
    assert plan(row(), T0 + 90, catchup="none", grace=120) == ([T0], T0 + H)


def test_a_fire_time_never_repeats():
    assert plan(row(last_fire=T0), T0 + 1) == ([], T0 + H)  # next_fire was not moved
    assert plan(row(last_fire=T0), T0 + H) == ([T0 + H], T0 + 2 * H)


def test_a_new_row_gets_its_first_next_fire():
    assert plan(row(next_fire=None), T0 + 10) == ([], T0 + H)
    assert plan(row(next_fire=None, last_fire=T0 - H), T0 + 10) == ([T0], T0 + H)


def test_run_after_rows_have_no_times():
    assert plan(row(cron="", next_fire=None), T0) == ([], None)


def test_timezone_is_used():
    nine_ny = datetime(2024, 6, 10, 13, tzinfo=UTC).timestamp()  # 09:00 EDT
    r = row(cron="0 0 9 * * *", timezone="America/New_York", next_fire=nine_ny)
    fires, nxt = plan(r, nine_ny + 1)
    assert fires == [nine_ny]
    assert nxt == nine_ny + 24 * H


def test_sparse_schedule_missed_for_years_fires_once():
    leap = datetime(2016, 2, 29, tzinfo=UTC).timestamp()
    r = row(cron="0 0 0 29 2 *", next_fire=leap)
    now = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    assert plan(r, now) == (
        [datetime(2024, 2, 29, tzinfo=UTC).timestamp()],
        datetime(2028, 2, 29, tzinfo=UTC).timestamp(),
    )


def test_dense_schedule_missed_for_a_week_fires_once_quickly():
    r = row(cron="* * * * * *", next_fire=T0)
    fires, nxt = plan(r, T0 + 7 * 24 * H + 0.5)
    assert fires == [T0 + 7 * 24 * H]
    assert nxt == T0 + 7 * 24 * H + 1


def test_bad_catchup():
    with pytest.raises(ValueError, match="once, all, none"):
        plan(row(), T0, catchup="some")


def test_a_sqlite_row_works(tmp_path):
    db = sqlite3.connect(tmp_path / "s.db")
    db.row_factory = sqlite3.Row
    db.execute(
        "CREATE TABLE schedules (job_id INTEGER, cron TEXT, timezone TEXT, "
        "run_after_job_id INTEGER, run_after_condition TEXT, next_fire REAL, last_fire REAL)"
    )
    db.execute("INSERT INTO schedules VALUES (1, ?, NULL, NULL, NULL, ?, NULL)", (HOURLY, T0))
    r = db.execute("SELECT * FROM schedules").fetchone()
    assert plan(r, T0 + 1) == ([T0], T0 + H)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["0 */5 * * * *", "0 30 2 * * *", "0 0 0 * * 7", "*/10 * * * * *"]),
    st.sampled_from([None, "America/New_York", "Europe/London"]),
    st.sampled_from(["once", "all", "none"]),
    st.floats(min_value=0, max_value=3 * 86400),
    st.lists(st.floats(min_value=0, max_value=5 * 3600), min_size=1, max_size=8),
)
def test_stepping_through_time_fires_each_time_at_most_once(cron, tz, catchup, start, steps):
    now = datetime(2024, 3, 9, tzinfo=UTC).timestamp() + start
    r = row(cron=cron, timezone=tz, next_fire=next_fire_ts(cron, now, tz))
    fired: list[float] = []
    for step in steps:
        now += step
        fires, nxt = plan(r, now, catchup=catchup)
        assert all(f <= now for f in fires)
        assert fires == sorted(set(fires))
        assert not fired or not fires or fires[0] > fired[-1]
        assert nxt > now or (catchup == "all" and fires)
        fired += fires
        r = row(cron=cron, timezone=tz, next_fire=nxt, last_fire=fired[-1] if fired else None)
