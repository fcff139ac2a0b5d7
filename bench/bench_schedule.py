"""How fast plan() handles many schedules falling due in the same minute.

``bench_plan(1000)`` builds 1,000 schedule rows of assorted cron strings and time
zones, all due at the same minute, and times ``plan()`` on each, cold (first sight of
each cron string) and warm (the daemon's steady state). The issue's real figure, fire
lag p99 <= 200 ms, is measured on the daemon; this is the planning part of it.

Run: ``.venv/bin/python bench/bench_schedule.py [jobs]``
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime

from localtailr.core import cron
from localtailr.runtime.schedule.plan import plan

DUE = datetime(2024, 6, 10, 8, 0, tzinfo=UTC).timestamp()  # 08:00 UTC, a Monday
ZONES = [None, "UTC", "Europe/London", "America/New_York", "Asia/Tokyo"]


def _rows(jobs: int) -> list[dict]:
    """Rows due at DUE: crons that fire at 08:00 on DUE's wall clock (or every minute)."""
    rows = []
    for i in range(jobs):
        tz = ZONES[i % len(ZONES)]
        local = datetime.fromtimestamp(DUE, cron.zone(tz) or UTC)
        kind = i % 4
        if kind == 0:
            expr = "0 * * * * *"
        elif kind == 1:
            expr = f"0 {local.minute} {local.hour} * * *"
        elif kind == 2:
            expr = f"0 {local.minute},{(local.minute + 30) % 60} * * * 1-5"
        else:
            expr = f"0 */{1 + i % 5} {local.hour} * * {local.isoweekday()}"
        rows.append(
            {"job_id": i, "cron": expr, "timezone": tz, "next_fire": DUE, "last_fire": None}
        )
    return rows


def _pass(rows: list[dict], now: float) -> list[float]:
    lags = []
    start = time.perf_counter()
    for row in rows:
        fires, nxt = plan(row, now)
        assert fires == [DUE] and nxt > now, (row, fires, nxt)
        lags.append(time.perf_counter() - start)
    return lags


def bench_plan(jobs: int = 1000) -> dict[str, float]:
    """Seconds to plan ``jobs`` rows due together; lag = when each job's plan was ready."""
    rows = _rows(jobs)
    now = DUE + 0.05
    cron._normalize.cache_clear()
    cron.to_croniter.cache_clear()
    cron._local.__dict__.clear()  # croniter iterators
    cold = _pass(rows, now)
    warm = _pass(rows, now)
    per_job = [b - a for a, b in zip([0.0] + warm[:-1], warm)]
    return {
        "jobs": jobs,
        "cold_total_s": cold[-1],
        "warm_total_s": warm[-1],
        "warm_per_job_mean_ms": statistics.fmean(per_job) * 1e3,
        "warm_per_job_p99_ms": sorted(per_job)[int(0.99 * (len(per_job) - 1))] * 1e3,
        "warm_lag_p99_ms": sorted(warm)[int(0.99 * (len(warm) - 1))] * 1e3,
    }


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for key, value in bench_plan(jobs).items():
        print(f"{key:24} {value:.3f}" if isinstance(value, float) else f"{key:24} {value}")


if __name__ == "__main__":
    main()
