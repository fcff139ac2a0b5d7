"""Top-level tasks for the workflow tests (importable in a fresh subprocess)."""

from __future__ import annotations

import dataclasses

from localtailr.sdk.workflow import task


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int


@task()
def one():
    return 1


@task()
def add(a, b=10):
    return a + b


@task(memory="256m", cpu=1)
def collect(*items, **named):
    return {"items": list(items), "named": named}


@task()
def shape(value):
    """Echo the value with its type, to check containers are rebuilt faithfully."""
    return value


@task()
def when(x, rundate=None, job_name=None, batch_name=None, scheduled_time=None, started_at=None):
    return {
        "x": x,
        "rundate": rundate,
        "job_name": job_name,
        "batch_name": batch_name,
        "scheduled_time": scheduled_time,
        "started_at": started_at,
    }


@task()
def boom(x):
    raise RuntimeError(f"boom {x}")


@task()
def move(p: Point, dx: int) -> Point:
    return Point(p.x + dx, p.y)


CALLS = {"flaky": 0}


@task(retries=2, retry_backoff=0)
def flaky(fail_times):
    CALLS["flaky"] += 1
    if CALLS["flaky"] <= fail_times:
        raise ValueError(f"attempt {CALLS['flaky']} failed")
    return CALLS["flaky"]
