"""Tasks and workflows for tests/test_workflow_runtime.py and tests/test_scheduler.py.

They run in child processes, so they talk to the test through files in the folder
named by ``WF_TEST_DIR`` (passed as an argument where needed).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from localtailr import Schedule, task, workflow


def _bump(folder: str, name: str) -> int:
    path = Path(folder) / f"{name}.count"
    count = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(count))
    return count


@task()
def number(n):
    return n


@task()
def add(a, b=0):
    return a + b


@task()
def total(*numbers):
    return sum(numbers)


@task()
def meet(folder, me, other):
    """Succeeds only if ``other`` runs at the same time (each waits for the other's mark)."""
    Path(folder, me).write_text("here")
    deadline = time.monotonic() + 60
    while not Path(folder, other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} never ran alongside {me}")
        time.sleep(0.01)
    return me


@task()
def fail(x):
    raise ValueError(f"bad input {x}")


@task(retries=2, retry_backoff=0.05)
def flaky(folder):
    if _bump(folder, "flaky") < 2:
        raise RuntimeError("first attempt fails")
    return "ok"


@task()
def counted(folder, name, value):
    _bump(folder, name)
    return value


@task()
def needs_marker(folder, x):
    if not Path(folder, "marker").exists():
        raise FileNotFoundError("marker missing")
    return x * 10


@task()
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@task()
def unpicklable():
    return lambda: None


@task()
def system(rundate, batch_name, job_name, scheduled_time):
    return {"rundate": rundate, "batch_name": batch_name, "job_name": job_name,
            "scheduled_time": scheduled_time}


@workflow(name="Chain")
def chain():
    a = number(1)
    b = add(a, 2)
    c = add(a, b).alias("sum")
    total(a, b, c, [1][0])


@workflow(name="Parallel", max_parallel=2)
def parallel(folder):
    meet(folder, "left", "right").alias("left")
    meet(folder, "right", "left").alias("right")


@workflow(name="Partial Failure")
def partial_failure():
    a = number(1)
    bad = fail(a)
    add(bad, 1).alias("after bad")
    add(add(bad, 2).alias("also after"), 3).alias("two after")
    add(a, 5).alias("fine")


@workflow(name="Retrying")
def retrying(folder):
    add(flaky(folder), "!")


@workflow(name="Rerun Me")
def rerun_me(folder):
    good = counted(folder, "good", 4)
    needs_marker(folder, good)


@workflow(name="Sleepy")
def sleepy(seconds=60):
    sleep(seconds)
    sleep(0).alias("quick")


@workflow(name="Too Slow", fail_after="1s")
def too_slow():
    sleep(60)


@workflow(name="Bad Result")
def bad_result():
    add(unpicklable(), 1)


@workflow(name="Body Raises")
def body_raises():
    number(1)
    raise RuntimeError("broken body")


@workflow(name="System Args")
def system_args():
    system().alias("sys")


@workflow(name="Every Minute", schedule=Schedule(cron_expression="0 * * * * *"))
def every_minute():
    number(1)


def folder() -> str:
    return os.environ["WF_TEST_DIR"]


def one_number():
    number(1)


def scheduled(name: str, schedule: Schedule):
    """A one-task workflow called ``name`` on ``schedule``."""
    return workflow(name=name, schedule=schedule)(one_number)


@task()
def say(word, times=2):
    for i in range(times):
        print(f"{word} {i}", flush=True)
    return word


@workflow(name="Talkative")
def talkative():
    first = say("hello")
    say("world", 3).alias("second")
    say(first, 1).alias("echo")
