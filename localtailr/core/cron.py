"""Cron expressions: the platform's 6-field form, validation, and DST-correct fire times.

The platform's form has six fields, seconds first::

    second minute hour day-of-month month day-of-week
    0      */24   2,15 *            7     7

Day of week runs Monday=1 … Sunday=7. ``normalize`` also accepts a standard 5-field
cron string (minute first, Sunday=0 or 7) and the ``@daily``-style aliases, and turns
them into the 6-field form. A day is chosen as in standard cron: when both day of month
and day of week are restricted, a day matching either one fires.

Fire times are computed by croniter on the schedule's local wall clock and mapped to
UTC with these rules on the days the clocks change (``tz``):

- spring forward: a wall time that does not exist (02:30 when 02:00 jumps to 03:00)
  fires once, at the moment of the jump — unless the hour field is ``*`` (a job that
  runs every hour simply has no run in the hour that does not exist);
- fall back: a wall time that happens twice (01:30) fires once, the first time —
  unless the hour field is ``*`` (a job that runs every hour keeps running every hour).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
# The most days each month can have (February: 29, in leap years).
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] is the value low + i
    question: bool = False  # '?' accepted (as '*')


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day of month", 1, 31, question=True)
_MONTH = _Field("month", 1, 12, MONTH_NAMES)
_DOW6 = _Field("day of week", 1, 7, DAY_NAMES, question=True)  # Monday=1 … Sunday=7
# Standard cron: Sunday=0 … Saturday=6, and 7 is Sunday again.
_DOW5 = _Field(
    "day of week",
    0,
    7,
    ("sunday",) + DAY_NAMES[:6] + ("sunday",),
    question=True,
)
_FIELDS6 = (_SECOND, _MINUTE, _HOUR, _DOM, _MONTH, _DOW6)
_FIELDS5 = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW5)


def match_name(text: str, names: tuple[str, ...], what: str) -> int:
    """Index in ``names`` of a case-insensitive name or 3+ letter prefix ("Tues", "sept")."""
    word = text.strip().lower()
    if len(word) >= 3:
        for i, full in enumerate(names):
            if full.startswith(word):
                return i
    accepted = ", ".join(n[:3] for n in dict.fromkeys(names))
    raise ValueError(f"unknown {what} {text!r}: use a name or its first 3+ letters ({accepted})")


def _value(text: str, field: _Field, expr: str) -> int:
    if text.isdigit():
        value = int(text)
    elif field.names and text.isalpha():
        try:
            value = field.low + match_name(text, field.names, field.name)
        except ValueError as e:
            raise ValueError(f"cron expression {expr!r}: {e}") from None
    else:
        raise ValueError(
            f"cron expression {expr!r}: {field.name} field has {text!r}, "
            f"which is not a number{' or a name' if field.names else ''}"
        )
    if not field.low <= value <= field.high:
        extra = " (Monday=1 … Sunday=7)" if field is _DOW6 else ""
        raise ValueError(
            f"cron expression {expr!r}: {field.name} {value} is out of range "
            f"{field.low}-{field.high}{extra}"
        )
    return value


def _parse_field(text: str, field: _Field, expr: str) -> tuple[str, frozenset[int]]:
    """The field in canonical form (names as numbers, '?' as '*') and the values it allows."""
    if text in ("*", "?"):
        if text == "?" and not field.question:
            raise ValueError(
                f"cron expression {expr!r}: '?' is only allowed for day of month or day of week"
            )
        return "*", frozenset(range(field.low, field.high + 1))
    items: list[str] = []
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(
                    f"cron expression {expr!r}: step {step_text!r} in {field.name} field "
                    "must be a whole number of at least 1"
                )
            step = int(step_text)
        if base in ("*", "?") and (slash or base == "*"):
            low, high, canon = field.low, field.high, "*"
        elif "-" in base:
            a, _, b = base.partition("-")
            low, high = _value(a, field, expr), _value(b, field, expr)
            if low > high:
                raise ValueError(
                    f"cron expression {expr!r}: range {base!r} in {field.name} field goes "
                    "backwards; write it low-high"
                )
            canon = f"{low}-{high}"
        elif base:
            low = _value(base, field, expr)
            high = field.high if slash else low
            canon = str(low)
        else:
            raise ValueError(f"cron expression {expr!r}: empty item in {field.name} field {text!r}")
        if slash and step > field.high - field.low + 1:
            raise ValueError(
                f"cron expression {expr!r}: step {step} in {field.name} field is larger "
                f"than its range {field.low}-{field.high}"
            )
        values.update(range(low, high + 1, step))
        items.append(f"{canon}/{step}" if slash else canon)
    return ",".join(items), frozenset(values)


def _render(values: frozenset[int]) -> str:
    """A sorted list of numbers, runs of three or more written as ranges."""
    out: list[str] = []
    run: list[int] = []
    for v in sorted(values):
        if run and v == run[-1] + 1:
            run.append(v)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) >= 3 else ",".join(map(str, run)))
        run = [v]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) >= 3 else ",".join(map(str, run)))
    return ",".join(out)


def _check_possible(dom: str, dom_values, months, dow: str, expr: str) -> None:
    """Refuse a day of month that no chosen month has (Feb 30), when day of week is '*'."""
    if dom == "*" or dow != "*":
        return
    if not any(day <= MONTH_DAYS[m - 1] for day in dom_values for m in months):
        names = ",".join(MONTH_NAMES[m - 1][:3].title() for m in sorted(months))
        days = ",".join(map(str, sorted(dom_values)))
        raise ValueError(f"cron expression {expr!r}: day {days} never happens in {names}")


def normalize(expr: str) -> str:
    """The platform's 6-field form of a 6-field, 5-field or ``@alias`` cron string.

    Raises ValueError naming what is wrong. The result is canonical: fields separated
    by single spaces, names turned into numbers, '?' into '*'.
    """
    if not isinstance(expr, str):
        raise ValueError(  # noqa: TRY004 - bad input is a ValueError throughout localtailr
            f"cron expression must be a string, not {type(expr).__name__}"
        )
    return _normalize(expr)


@lru_cache(maxsize=4096)
def _normalize(expr: str) -> str:
    text = expr.strip()
    if text.lower() in ALIASES:
        text = ALIASES[text.lower()]
    elif text.startswith("@"):
        raise ValueError(f"cron expression {expr!r}: unknown alias; accepted: {', '.join(ALIASES)}")
    parts = text.split()
    if len(parts) == 6:
        parsed = [_parse_field(p, f, expr) for p, f in zip(parts, _FIELDS6)]
        fields = [canon for canon, _ in parsed]
    elif len(parts) == 5:
        parsed5 = [_parse_field(p, f, expr) for p, f in zip(parts, _FIELDS5)]
        fields = ["0"] + [canon for canon, _ in parsed5]
        dow_canon, dow_values = parsed5[4]
        if dow_canon != "*":  # Sunday=0/7 → Monday=1 … Sunday=7, written out
            fields[5] = _render(frozenset(7 if d == 0 else d for d in dow_values))
        parsed = [("0", frozenset({0}))] + parsed5
    else:
        raise ValueError(
            f"cron expression {expr!r} has {len(parts)} fields; use 6 fields "
            "'second minute hour day-of-month month day-of-week' (day of week "
            "Monday=1 … Sunday=7) or standard 5-field cron 'minute hour "
            "day-of-month month day-of-week'"
        )
    _check_possible(fields[3], parsed[3][1], parsed[4][1], fields[5], expr)
    return " ".join(fields)


@lru_cache(maxsize=4096)
def to_croniter(cron6: str) -> tuple[str, bool]:
    """croniter's spelling of a 6-field platform string, and whether the hour field is '*'.

    croniter wants seconds first (``second_at_beginning``) and Sunday=0, so the day of
    week is written out as a list.
    """
    fields = normalize(cron6).split()
    if fields[5] != "*":
        _, days = _parse_field(fields[5], _DOW6, cron6)
        fields[5] = ",".join(str(d % 7) for d in sorted(days, key=lambda d: d % 7))
    _, hours = _parse_field(fields[2], _HOUR, cron6)
    return " ".join(fields), len(hours) == 24


_local = threading.local()


def _iterator(expr: str) -> croniter:
    cache = getattr(_local, "iters", None)
    if cache is None:
        cache = _local.iters = {}
    it = cache.get(expr)
    if it is None:
        if len(cache) > 4096:
            cache.clear()
        it = cache[expr] = croniter(expr, 0.0, second_at_beginning=True)
    return it


def _wall_next(expr: str, wall: float) -> float:
    """The first matching wall-clock time strictly after ``wall`` (both as UTC-epoch floats)."""
    it = _iterator(expr)
    it.set_current(wall, force=True)
    return it.get_next(float)


@lru_cache(maxsize=512)
def zone(tz: str | None) -> ZoneInfo | None:
    """The ZoneInfo for an IANA name (None or "UTC" for UTC). Raises ValueError."""
    if tz is None or tz == "UTC":
        return None
    if not isinstance(tz, str) or not tz:
        raise ValueError(f"invalid timezone {tz!r}: use an IANA name like 'America/New_York'")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown timezone {tz!r}: use an IANA name like 'America/New_York' or 'UTC'"
        ) from None


def _offset(z: ZoneInfo, t: float) -> float:
    offset = datetime.fromtimestamp(t, z).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


_WEEK = 7 * 86400
_STEP = 6 * 3600


def _next_transition(z: ZoneInfo, t: float, end: float, o: float) -> float | None:
    """The first instant in (t, end] where the UTC offset stops being ``o``, or None."""
    if end - t <= _WEEK:
        if _offset(z, end) == o:
            return None
        lo, hi = t, end
    else:
        lo = t
        while True:
            hi = min(lo + _STEP, end)
            if _offset(z, hi) != o:
                break
            if hi >= end:
                return None
            lo = hi
    lo_i, hi_i = math.floor(lo), math.ceil(hi)
    while hi_i - lo_i > 1:  # transitions happen on whole seconds
        mid = (lo_i + hi_i) // 2
        if _offset(z, mid) == o:
            lo_i = mid
        else:
            hi_i = mid
    return float(hi_i)


def _is_repeat(z: ZoneInfo, wall: float, instant: float) -> bool:
    """Whether ``instant`` is the second time its wall-clock reading happens (fall back)."""
    local = datetime.fromtimestamp(wall, UTC).replace(tzinfo=z)  # fold=0: the first one
    return abs(local.timestamp() - instant) > 0.5


def next_fire_ts(cron6: str, after: float, tz: str | None = None) -> float:
    """The first fire time strictly after ``after``, both as epoch seconds."""
    expr, every_hour = to_croniter(cron6)
    z = zone(tz)
    if z is None:
        return _wall_next(expr, after)
    t, inclusive = after, False
    for _ in range(100_000):
        o = _offset(z, t)
        wall = _wall_next(expr, t + o - (1 if inclusive else 0))
        cand = wall - o
        e = _next_transition(z, t, cand, o)
        if e is not None:
            o2 = _offset(z, e)
            if o2 > o and wall < e + o2 and not every_hour:
                return e  # the wall time was skipped: fire as the clocks jump
            t, inclusive = e, True
            continue
        if not every_hour and _is_repeat(z, wall, cand):
            t, inclusive = cand, False
            continue
        return cand
    raise ValueError(f"cron expression {cron6!r}: no fire time found after {after}")


def _aware(value: datetime, what: str) -> float:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, not {value!r}")
    return value.timestamp()


def _as_utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def next_fire(cron6: str, after: datetime, tz: str | None = None) -> datetime:
    """The first fire time (UTC) of ``cron6`` read on the wall clock of ``tz``, after ``after``."""
    return _as_utc(next_fire_ts(cron6, _aware(after, "after"), tz))


def fires_between_ts(
    cron6: str, start: float, end: float, tz: str | None = None, limit: int | None = None
) -> list[float]:
    """Fire times in (start, end] as epoch seconds, at most ``limit`` of them (the first)."""
    out: list[float] = []
    t = start
    while limit is None or len(out) < limit:
        t = next_fire_ts(cron6, t, tz)
        if t > end:
            break
        out.append(t)
    return out


def fires_between(
    cron6: str, start: datetime, end: datetime, tz: str | None = None
) -> list[datetime]:
    """Fire times (UTC) strictly after ``start`` and up to ``end`` included."""
    return [
        _as_utc(t) for t in fires_between_ts(cron6, _aware(start, "start"), _aware(end, "end"), tz)
    ]


__all__ = [
    "DAY_NAMES",
    "MONTH_NAMES",
    "fires_between",
    "fires_between_ts",
    "match_name",
    "next_fire",
    "next_fire_ts",
    "normalize",
    "to_croniter",
    "zone",
]
