"""What the scheduler fires: pure planning over one ``schedules`` row and the time.

The daemon, for each row, calls ``plan(row, now)`` and then, in ONE transaction,
creates a run for each returned fire time and writes ``next_fire`` (and ``last_fire``
= the last fire time). Because the row only moves forward together with the runs it
produced, a crash before the commit fires again and a crash after it does not: each
fire time happens exactly once.

Runs missed while the daemon was down (several fire times already past) follow
``catchup``:

- ``"once"`` (default): one run, for the most recent missed time — not a burst;
- ``"all"``: every missed time, oldest first, at most ``max_fires`` a call; the rest
  come on the next calls (``new_next_fire`` then stays in the past);
- ``"none"``: only the times at most ``grace`` seconds old; older ones are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.cron import fires_between_ts, next_fire_ts

CATCHUP = ("once", "all", "none")

# Windows tried, smallest first, to find the most recent fire time cheaply.
_WINDOWS = (2.0, 60.0, 3600.0, 86400.0, 32 * 86400.0, 400 * 86400.0)


def _latest(cron: str, tz: str | None, lo: float, now: float) -> float | None:
    """The last fire time in (lo, now], or None."""
    for window in _WINDOWS:
        start = max(lo, now - window)
        times = fires_between_ts(cron, start, now, tz)
        if times:
            return times[-1]
        if start == lo:
            return None
    times = fires_between_ts(cron, lo, now, tz)
    return times[-1] if times else None


def plan(
    row: Mapping[str, Any],
    now: float,
    catchup: str = "once",
    grace: float = 60.0,
    max_fires: int = 1000,
) -> tuple[list[float], float | None]:
    """The fire times due for ``row`` at ``now`` and the row's new ``next_fire``.

    ``row`` has ``cron`` (6-field platform form), ``timezone``, ``next_fire`` and
    ``last_fire`` (epoch seconds or None), as in the ``schedules`` table. A row with no
    ``next_fire`` yet gets one (after ``last_fire`` if set, else after ``now``). A row
    without a cron (run after another job) returns ``([], None)``. Fire times are
    epoch seconds, oldest first, never at or before ``last_fire``; the new
    ``next_fire`` is after all of them (and after ``now`` unless "all" was capped).
    """
    if catchup not in CATCHUP:
        raise ValueError(f"catchup={catchup!r}: use one of {', '.join(CATCHUP)}")
    cron, tz = row["cron"], row["timezone"]
    if not cron:
        return [], None
    last = row["last_fire"]
    due = row["next_fire"]
    if due is None:
        due = next_fire_ts(cron, last if last is not None else now, tz)
    if last is not None and due <= last:  # never fire a time twice
        due = next_fire_ts(cron, last, tz)
    if due > now:
        return [], due
    following = next_fire_ts(cron, due, tz)
    if following > now:  # the usual case: one time due, none missed
        if catchup == "none" and now - due > grace:
            return [], following
        return [due], following

    if catchup == "all":
        fires = [due] + fires_between_ts(cron, due, now, tz, limit=max_fires - 1)
        if len(fires) >= max_fires:
            return fires, next_fire_ts(cron, fires[-1], tz)
    elif catchup == "once":
        fires = [_latest(cron, tz, due, now) or due]
    else:
        recent = now - grace
        if due >= recent:
            fires = [due] + fires_between_ts(cron, due, now, tz)
        else:
            fires = fires_between_ts(cron, recent - 1e-6, now, tz)
    return fires, next_fire_ts(cron, now, tz)
