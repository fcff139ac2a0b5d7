"""Cron fire times: platform numbering, seconds, and the days the clocks change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from localtailr.core.cron import fires_between, next_fire, normalize

NY = "America/New_York"
LONDON = "Europe/London"


def _local_day(tz: str, year: int, month: int, day: int) -> tuple[datetime, datetime]:
    """The UTC instants just before a local day starts and when it ends."""
    z = ZoneInfo(tz)
    start = datetime(year, month, day, tzinfo=z)
    end = datetime(year, month, day, tzinfo=z) + timedelta(days=1)
    return start.astimezone(UTC) - timedelta(seconds=1), end.astimezone(UTC)


def _fires_on(cron: str, tz: str, y: int, m: int, d: int, shift: int = 0) -> list[datetime]:
    day = date(y, m, d) + timedelta(days=shift)
    start, end = _local_day(tz, day.year, day.month, day.day)
    return [t.astimezone(ZoneInfo(tz)) for t in fires_between(cron, start, end, tz)]


def test_day_of_week_is_monday_1_to_sunday_7():
    after = datetime(2024, 6, 5, tzinfo=UTC)  # a Wednesday
    assert next_fire("0 0 0 * * 1", after).date().isoweekday() == 1
    assert next_fire("0 0 0 * * 7", after).weekday() == 6  # Sunday
    assert next_fire("0 0 0 * * 7", after) == datetime(2024, 6, 9, tzinfo=UTC)
    days = {t.isoweekday() for t in fires_between("0 0 0 * * */2", after, after + timedelta(14))}
    assert days == {1, 3, 5, 7}  # steps count from Monday=1


def test_seconds_field():
    after = datetime(2024, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert next_fire("*/20 * * * * *", after) == datetime(2024, 1, 1, 0, 0, 20, tzinfo=UTC)
    assert next_fire("30 0 9 * * *", after) == datetime(2024, 1, 1, 9, 0, 30, tzinfo=UTC)


def test_timezone_reads_the_local_wall_clock():
    after = datetime(2024, 7, 1, tzinfo=UTC)
    assert next_fire("0 0 9 * * *", after, NY) == datetime(2024, 7, 1, 13, tzinfo=UTC)  # EDT
    after = datetime(2024, 1, 1, tzinfo=UTC)
    assert next_fire("0 0 9 * * *", after, NY) == datetime(2024, 1, 1, 14, tzinfo=UTC)  # EST


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire("0 0 0 * * *", datetime(2024, 1, 1))


# -- the days the clocks change ------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "cron", "local_time"),
    [
        (NY, (2024, 3, 10), "0 30 2 * * *", "03:00"),  # 02:30 does not exist: at the jump
        (NY, (2023, 3, 12), "0 30 2 * * *", "03:00"),
        (LONDON, (2024, 3, 31), "0 30 1 * * *", "02:00"),  # London jumps 01:00 -> 02:00
        (LONDON, (2025, 3, 30), "0 30 1 * * *", "02:00"),
    ],
)
def test_spring_forward_a_skipped_time_fires_once(tz, day, cron, local_time):
    fires = _fires_on(cron, tz, *day)
    assert [t.strftime("%H:%M") for t in fires] == [local_time]
    before = _fires_on(cron, tz, *day, shift=-1)
    after = _fires_on(cron, tz, *day, shift=1)
    assert len(before) == len(after) == 1  # and the neighbouring days are normal


@pytest.mark.parametrize(
    ("tz", "day"),
    [(NY, (2024, 11, 3)), (NY, (2023, 11, 5)), (LONDON, (2024, 10, 27)), (LONDON, (2025, 10, 26))],
)
def test_fall_back_a_repeated_time_fires_once_the_first_time(tz, day):
    fires = _fires_on("0 30 1 * * *", tz, *day)
    assert len(fires) == 1
    assert fires[0].strftime("%H:%M") == "01:30"
    assert fires[0].fold == 0  # the first 01:30
    assert fires[0].utcoffset() > _fires_on("0 30 1 * * *", tz, *day, shift=1)[0].utcoffset()


def test_an_hourly_job_keeps_its_real_time_rhythm_across_changes():
    for tz, day in [(NY, (2024, 3, 10)), (NY, (2024, 11, 3)), (LONDON, (2024, 3, 31))]:
        start, end = _local_day(tz, *day)
        fires = fires_between("0 30 * * * *", start, end, tz)
        gaps = {b - a for a, b in zip(fires, fires[1:])}
        assert gaps == {timedelta(hours=1)}, (tz, day, fires)
    start, end = _local_day(NY, 2024, 11, 3)
    assert len(fires_between("0 30 * * * *", start, end, NY)) == 25  # a 25-hour day


def test_a_job_in_the_skipped_hour_every_15_minutes_fires_once_at_the_jump():
    fires = _fires_on("0 */15 2 * * *", NY, 2024, 3, 10)
    assert [t.strftime("%H:%M") for t in fires] == ["03:00"]
    fires = _fires_on("0 */15 1 * * *", NY, 2024, 11, 3)
    assert [t.strftime("%H:%M") for t in fires] == ["01:00", "01:15", "01:30", "01:45"]
    assert {t.fold for t in fires} == {0}


def test_starting_inside_the_repeated_hour_does_not_fire_it_again():
    z = ZoneInfo(NY)
    inside = datetime(2024, 11, 3, 1, 10, fold=1, tzinfo=z).astimezone(UTC)  # second 01:10
    t = next_fire("0 30 1 * * *", inside, NY)
    assert t.astimezone(z).date().isoformat() == "2024-11-04"


# -- properties ---------------------------------------------------------------------

ZONES = ["UTC", NY, LONDON, "Australia/Lord_Howe", "America/Sao_Paulo", "Asia/Tehran"]
CRONS = [
    "0 30 2 * * *",
    "0 30 1 * * *",
    "0 */15 * * * *",
    "0 0 */2 * * *",
    "0 0,30 0-3 * * *",
    "0 0 0 * * 7",
    "0 45 1 1 * *",
    "*/30 * 1-2 * * *",
]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(CRONS),
    st.sampled_from(ZONES),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 1, 1)),
)
def test_next_fire_strictly_increases(cron, tz, start):
    t = start.replace(tzinfo=UTC)
    for _ in range(6):
        nxt = next_fire(cron, t, tz)
        assert nxt > t
        t = nxt


_FIVE = st.tuples(
    st.sampled_from(["*", "0", "*/7", "5-40/5", "0,30", "59"]),
    st.sampled_from(["*", "0", "*/5", "9-17", "3,15", "23"]),
    st.sampled_from(["*", "1", "15", "1-7", "*/10", "31"]),
    st.sampled_from(["*", "1", "2", "*/3", "jan,jul", "6-8"]),
    st.sampled_from(["*", "0", "7", "1-5", "mon-fri", "*/2", "sun,sat", "0-3", "5-7"]),
).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(_FIVE, st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)))
def test_five_field_cron_fires_as_standard_cron_does(expr, start):
    try:
        cron6 = normalize(expr)
    except ValueError as e:
        assert "never happens" in str(e)
        return
    after = start.replace(tzinfo=UTC)
    want = croniter(expr, after).get_next(datetime)
    assert next_fire(cron6, after) == want
