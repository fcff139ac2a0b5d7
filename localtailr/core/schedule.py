"""``Schedule``: when a batch job runs, as a cron string or human-readable helpers.

The helpers compile to the platform's 6-field cron form (seconds first, day of week
Monday=1 … Sunday=7); docs/schedules.md has the table of examples.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from .cron import DAY_NAMES, MONTH_DAYS, MONTH_NAMES, match_name, normalize, zone

CONDITIONS = ("success", "failure", "completion")

_HELPERS = (
    "at_minutes",
    "every_minute",
    "at_hours",
    "every_hour",
    "weekdays",
    "day_of_month",
    "in_month",
    "every_month",
)
_PARAMS = (
    "cron_expression",
    *_HELPERS,
    "timezone",
    "run_after_job_uuid",
    "run_after_job_name",
    "run_after_job_condition",
    "allow_overlap",
)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _items(name: str, value: object, example: str) -> list:
    """The items of a list argument; a single value counts as a list of one."""
    if isinstance(value, (list, tuple, set, frozenset, range)):
        items = list(value)
    elif isinstance(value, (int, str)) and not isinstance(value, bool):
        items = [value]
    else:
        raise ValueError(f"{name}={value!r} must be a list, e.g. {name}={example}")  # noqa: TRY004
    if not items:
        raise ValueError(f"{name}=[] is empty: give at least one value, e.g. {name}={example}")
    return items


def _numbers(name: str, value: object, low: int, high: int, example: str) -> list[int]:
    out = set()
    for item in _items(name, value, example):
        if not _is_int(item) or not low <= item <= high:
            raise ValueError(
                f"{name}={value!r}: {item!r} is not a whole number from {low} to {high}"
            )
        out.add(item)
    return sorted(out)


def _every(name: str, value: object, high: int) -> int:
    """An ``every_*`` figure: an int, or a list holding one int (as the reference shows)."""
    n = value
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"{name}={value!r}: give one number, e.g. {name}=5")
        n = value[0]
    if not _is_int(n) or not 1 <= n <= high:
        raise ValueError(f"{name}={value!r}: use a whole number from 1 to {high}")
    return n


def _named(name: str, value: object, names: tuple[str, ...], what: str, example: str) -> list[int]:
    """Weekday or month numbers (1-based) from names, 3+ letter prefixes or numbers."""
    out = set()
    for item in _items(name, value, example):
        if _is_int(item) and 1 <= item <= len(names):
            out.add(item)
        elif isinstance(item, str):
            try:
                out.add(match_name(item, names, what) + 1)
            except ValueError as e:
                raise ValueError(f"{name}={value!r}: {e}") from None
        else:
            raise ValueError(
                f"{name}={value!r}: {item!r} is not a {what} name (e.g. {example}) "
                f"or a number from 1 to {len(names)}"
            )
    return sorted(out)


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or "\0" in value or len(value) > 255:
        raise ValueError(f"{name}={value!r} must be a non-empty string")
    return value.strip()


class Schedule:
    """Represents a schedule for batch jobs.

    Give either a raw ``cron_expression`` (6-field platform form, or standard 5-field
    cron) or the human-readable helpers, which are compiled into cron syntax; if both
    are given the helpers take precedence. Or, instead of a time, ``run_after_job_uuid``
    / ``run_after_job_name``: the job runs when that job ends with
    ``run_after_job_condition`` ("success", the default, "failure" or "completion").

    A fire while a run of the job is still active is skipped, and the skip recorded on
    that run (Airflow's ``max_active_runs=1``); ``allow_overlap=True`` (a localtailr
    addition) starts a run at every fire instead.

    Example:
        >>> s = Schedule(at_hours=[8, 16], weekdays=["mon", "tue", "wed", "thu", "fri"])
        >>> s.get_cron_string()
        '0 0 8,16 * * 1,2,3,4,5'

    Raises ValueError, naming the argument and what is accepted, for anything invalid
    (including a date that never happens, such as day_of_month=30 in_month=["Feb"]).
    """

    def __init__(  # noqa: C901 - one check for each of the SDK's keyword arguments
        self,
        cron_expression: str = "",
        at_minutes: list[int] | None = None,
        every_minute: int | None = None,
        at_hours: list[int] | None = None,
        every_hour: int | None = None,
        weekdays: list[str] | None = None,
        day_of_month: int | None = None,
        in_month: list[str] | None = None,
        every_month: int | None = None,
        timezone: str | None = None,
        run_after_job_uuid: str | None = None,
        run_after_job_name: str | None = None,
        run_after_job_condition: str | None = None,
        allow_overlap: bool = False,
    ) -> None:
        if not isinstance(allow_overlap, bool):
            raise ValueError(  # noqa: TRY004 - bad input is a ValueError throughout localtailr
                f"allow_overlap={allow_overlap!r}: use True or False")
        self.allow_overlap = allow_overlap
        if cron_expression is None:
            cron_expression = ""
        if not isinstance(cron_expression, str):
            raise ValueError(  # noqa: TRY004 - bad input is a ValueError throughout localtailr
                f"cron_expression={cron_expression!r} must be a string such as '0 */2 * * *'"
            )
        raw = normalize(cron_expression) if cron_expression.strip() else ""
        self.cron_expression = cron_expression.strip()

        pair: list[tuple[str, list | None, str, int | None]]
        pair = [("at_minutes", at_minutes, "every_minute", every_minute)]
        pair += [("at_hours", at_hours, "every_hour", every_hour)]
        pair += [("in_month", in_month, "every_month", every_month)]
        for a, va, b, vb in pair:
            if va is not None and vb is not None:
                raise ValueError(f"give {a} or {b}, not both ({a}={va!r}, {b}={vb!r})")

        def norm(value, fn, *args):
            return None if value is None else fn(*args)

        self.at_minutes = norm(at_minutes, _numbers, "at_minutes", at_minutes, 0, 59, "[0, 30]")
        self.every_minute = norm(every_minute, _every, "every_minute", every_minute, 59)
        self.at_hours = norm(at_hours, _numbers, "at_hours", at_hours, 0, 23, "[8, 16]")
        self.every_hour = norm(every_hour, _every, "every_hour", every_hour, 23)
        days = norm(weekdays, _named, "weekdays", weekdays, DAY_NAMES, "weekday", "['mon']")
        self._days = days
        self.weekdays = None if days is None else [DAY_NAMES[d - 1][:3] for d in days]
        if day_of_month is not None and (not _is_int(day_of_month) or not 1 <= day_of_month <= 31):
            raise ValueError(f"day_of_month={day_of_month!r}: use a whole number from 1 to 31")
        self.day_of_month = day_of_month
        months = norm(in_month, _named, "in_month", in_month, MONTH_NAMES, "month", "['jan']")
        self._months = months
        self.in_month = None if months is None else [MONTH_NAMES[m - 1][:3] for m in months]
        self.every_month = norm(every_month, _every, "every_month", every_month, 12)

        if day_of_month is not None:
            chosen = months or (
                range(1, 13, self.every_month) if self.every_month else range(1, 13)
            )
            if not any(day_of_month <= MONTH_DAYS[m - 1] for m in chosen):
                names = ", ".join(MONTH_NAMES[m - 1][:3].title() for m in chosen)
                raise ValueError(
                    f"day_of_month={day_of_month} never happens in {names}: choose a day "
                    "those months have"
                )

        if timezone is not None:
            zone(timezone)  # raises ValueError for an unknown name
        self.timezone = timezone

        self.run_after_job_uuid = norm(
            run_after_job_uuid, _text, "run_after_job_uuid", run_after_job_uuid
        )
        self.run_after_job_name = norm(
            run_after_job_name, _text, "run_after_job_name", run_after_job_name
        )
        after = self.run_after_job_uuid or self.run_after_job_name
        if self.run_after_job_uuid and self.run_after_job_name:
            raise ValueError(
                "give run_after_job_uuid or run_after_job_name, not both "
                f"({self.run_after_job_uuid!r}, {self.run_after_job_name!r})"
            )
        condition = run_after_job_condition
        if condition is not None:
            if not isinstance(condition, str) or condition.lower() not in CONDITIONS:
                raise ValueError(
                    f"run_after_job_condition={condition!r}: use one of {', '.join(CONDITIONS)}"
                )
            if not after:
                raise ValueError(
                    f"run_after_job_condition={condition!r} needs run_after_job_uuid "
                    "or run_after_job_name"
                )
            condition = condition.lower()
        elif after:
            condition = "success"
        self.run_after_job_condition = condition

        helpers = self._helpers_set()
        if after and (helpers or raw):
            raise ValueError(
                "a schedule runs either at times (cron_expression or helpers) or after "
                "another job (run_after_job_*), not both"
            )
        if not after and not helpers and not raw:
            raise ValueError(
                "an empty Schedule: give a cron_expression, helpers such as at_hours=[8], "
                "or run_after_job_name"
            )
        self._cron = self._compile() if helpers else raw

    def _helpers_set(self) -> list[str]:
        return [name for name in _HELPERS if getattr(self, name) is not None]

    def _compile(self) -> str:
        def listed(values):
            return ",".join(str(v) for v in values)

        dow = listed(self._days) if self._days else "*"
        if self._months:
            month = listed(self._months)
        elif self.every_month is not None:
            month = f"*/{self.every_month}"
        else:
            month = "*"
        dom = str(self.day_of_month) if self.day_of_month is not None else "*"
        coarse_day = dom != "*" or month != "*" or dow != "*"
        if self.at_hours is not None:
            hour = listed(self.at_hours)
        elif self.every_hour is not None:
            hour = f"*/{self.every_hour}"
        else:
            hour = "0" if coarse_day else "*"
        if self.at_minutes is not None:
            minute = listed(self.at_minutes)
        elif self.every_minute is not None:
            minute = f"*/{self.every_minute}"
        else:
            minute = "0" if coarse_day or hour != "*" else "*"
        return normalize(f"0 {minute} {hour} {dom} {month} {dow}")

    def get_cron_string(self) -> str:
        """Returns the compiled cron string ('' for a schedule that runs after another job)."""
        return self._cron

    def to_dict(self) -> dict[str, Any]:
        """The arguments (normalised) and the compiled ``cron``; ``from_dict`` reverses it."""
        out: dict[str, Any] = {name: getattr(self, name) for name in _PARAMS}
        out["cron"] = self._cron
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        """A Schedule from ``to_dict``'s output (the ``cron`` key is recomputed)."""
        if not isinstance(data, dict):
            raise ValueError(f"Schedule.from_dict needs a dict, not {type(data).__name__}")  # noqa: TRY004
        unknown = set(data) - set(_PARAMS) - {"cron"}
        if unknown:
            raise ValueError(
                f"Schedule.from_dict: unknown keys {sorted(unknown)}; accepted: {', '.join(_PARAMS)}"
            )
        return cls(**{k: v for k, v in data.items() if k != "cron"})

    def _key(self) -> tuple:
        return (
            self._cron,
            self.timezone or "UTC",
            self.run_after_job_uuid,
            self.run_after_job_name,
            self.run_after_job_condition,
            self.allow_overlap,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        args = []
        for name in _PARAMS:
            value = getattr(self, name)
            if value in (None, "") or value is False or (
                    name == "run_after_job_condition" and value == "success"):
                continue
            if name == "cron_expression" and self._helpers_set():
                continue
            args.append(f"{name}={value!r}")
        return f"Schedule({', '.join(args)})"

    def __str__(self) -> str:
        return self._cron or f"after {self.run_after_job_name or self.run_after_job_uuid}"
