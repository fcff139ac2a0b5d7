"""Schedule: the helpers compile to the platform's cron form; docs/schedules.md is the spec."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from localtailr.core.cron import DAY_NAMES, MONTH_DAYS, MONTH_NAMES, next_fire, to_croniter
from localtailr.sdk.schedule import Schedule

DOC = Path(__file__).resolve().parents[2] / "docs" / "schedules.md"


def _table(heading: str) -> list[tuple[str, str]]:
    """The (first cell, second cell) rows of the table under ``heading`` in the doc."""
    text = DOC.read_text()
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        m = re.match(r"^\|\s*`(Schedule\(.*\))`\s*\|\s*(.*?)\s*\|$", line)
        if m:
            rows.append((m.group(1), m.group(2)))
    return rows


EXAMPLES = _table("### Examples")
REFUSED = _table("### Refused")


def test_doc_tables_were_found():
    assert len(EXAMPLES) >= 25
    assert len(REFUSED) >= 25


@pytest.mark.parametrize(("call", "expected"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_doc_example(call, expected):
    schedule = eval(call, {"Schedule": Schedule})
    want = "" if expected == "(none)" else expected.strip("`")
    assert schedule.get_cron_string() == want
    if want:
        expr, _ = to_croniter(want)
        assert croniter.is_valid(expr, second_at_beginning=True)


@pytest.mark.parametrize(("call", "message"), REFUSED, ids=[c for c, _ in REFUSED])
def test_doc_refused(call, message):
    with pytest.raises(ValueError, match=re.escape(message.strip("`"))):
        eval(call, {"Schedule": Schedule})


def test_reference_examples():
    s = Schedule(in_month=["Jul"], weekdays=["Sun"], every_minute=[24], at_hours=[2, 15])
    assert s.get_cron_string() == "0 */24 2,15 * 7 7"
    s = Schedule(
        at_minutes=[0, 15, 30, 45],
        at_hours=[0, 12],
        weekdays=["Mon", "Wed", "Fri"],
        day_of_month=15,
        in_month=["Jan", "Jul"],
    )
    assert s.get_cron_string() == "0 0,15,30,45 0,12 15 1,7 1,3,5"


def test_reference_example_fires_on_weekdays_at_8_and_16_utc():
    s = Schedule(at_hours=[8, 16], weekdays=["mon", "tue", "wed", "thu", "fri"])
    t = datetime(2024, 6, 7, 12, tzinfo=UTC)  # a Friday
    fires = []
    for _ in range(4):
        t = next_fire(s.get_cron_string(), t, s.timezone)
        fires.append(t)
    assert fires == [
        datetime(2024, 6, 7, 16, tzinfo=UTC),
        datetime(2024, 6, 10, 8, tzinfo=UTC),  # Monday
        datetime(2024, 6, 10, 16, tzinfo=UTC),
        datetime(2024, 6, 11, 8, tzinfo=UTC),
    ]


@pytest.mark.parametrize("spelling", ["mon", "Mon", "MON", "monday", "Monday", "mond", 1])
def test_weekday_spellings(spelling):
    assert Schedule(weekdays=[spelling]).get_cron_string() == "0 0 0 * * 1"


@pytest.mark.parametrize("spelling", ["sep", "Sept", "SEPTEMBER", 9])
def test_month_spellings(spelling):
    assert Schedule(in_month=[spelling]).get_cron_string() == "0 0 0 * 9 *"


def test_dict_round_trip_equality_and_repr():
    s = Schedule(at_hours=[16, 8], weekdays=["Friday", "mon"], timezone="Europe/London")
    d = s.to_dict()
    assert d["cron"] == "0 0 8,16 * * 1,5"
    assert d["weekdays"] == ["mon", "fri"]
    assert Schedule.from_dict(d) == s
    assert hash(Schedule.from_dict(d)) == hash(s)
    assert eval(repr(s), {"Schedule": Schedule}) == s
    assert s != Schedule(at_hours=[8, 16], weekdays=["mon", "fri"])  # other timezone
    assert Schedule(cron_expression=s.get_cron_string(), timezone="Europe/London") == s
    after = Schedule(run_after_job_name="ingest", run_after_job_condition="Failure")
    assert after.run_after_job_condition == "failure"
    assert Schedule.from_dict(after.to_dict()) == after
    assert after != Schedule(run_after_job_name="ingest")
    assert Schedule(run_after_job_uuid="abc").run_after_job_condition == "success"


def test_from_dict_refuses_unknown_keys():
    with pytest.raises(ValueError, match="unknown keys"):
        Schedule.from_dict({"at_hours": [1], "hourz": 2})


def test_raw_cron_kept_canonical():
    assert Schedule("  0  0  9 * *  mon-fri ").get_cron_string() == "0 0 9 * * 1-5"
    assert Schedule("0 0 9 * * MON-FRI").get_cron_string() == "0 0 9 * * 1-5"


# -- properties ------------------------------------------------------------------

ZONES = [None, "UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"]


def _maybe(strategy):
    return st.one_of(st.none(), strategy)


@st.composite
def helper_kwargs(draw):
    kw = {}
    if draw(st.booleans()):
        kw["at_minutes"] = draw(st.lists(st.integers(0, 59), min_size=1, max_size=4))
    elif draw(st.booleans()):
        kw["every_minute"] = draw(st.integers(1, 59))
    if draw(st.booleans()):
        kw["at_hours"] = draw(st.lists(st.integers(0, 23), min_size=1, max_size=4))
    elif draw(st.booleans()):
        kw["every_hour"] = draw(st.integers(1, 23))
    if draw(st.booleans()):
        kw["weekdays"] = draw(
            st.lists(st.sampled_from(DAY_NAMES).map(lambda n: n[:3]), min_size=1, max_size=3)
        )
    months = None
    if draw(st.booleans()):
        months = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))
        kw["in_month"] = [MONTH_NAMES[m - 1] for m in months]
    elif draw(st.booleans()):
        kw["every_month"] = draw(st.integers(1, 12))
    if draw(st.booleans()):
        most = max(MONTH_DAYS[m - 1] for m in months) if months else 28
        kw["day_of_month"] = draw(st.integers(1, most))
    if not kw:
        kw["every_minute"] = 1
    kw["timezone"] = draw(st.sampled_from(ZONES))
    return kw


@settings(max_examples=150, deadline=None)
@given(
    helper_kwargs(), st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 1, 1))
)
def test_any_helper_combination_compiles_to_a_cron_croniter_accepts(kw, start):
    s = Schedule(**kw)
    cron = s.get_cron_string()
    assert len(cron.split()) == 6
    expr, _ = to_croniter(cron)
    assert croniter.is_valid(expr, second_at_beginning=True)
    after = start.replace(tzinfo=UTC)
    t1 = next_fire(cron, after, s.timezone)
    t2 = next_fire(cron, t1, s.timezone)
    assert after < t1 < t2
    assert Schedule.from_dict(s.to_dict()) == s
