"""Jobs the live browser tests run through the real daemon."""

import time

from localtailr import task, workflow


def printer():
    for i in range(60):
        print(f"live line {i}", flush=True)
        time.sleep(0.25)


@task()
def source():
    return [1, 2, 3]


@task()
def divide(rows):
    return sum(rows) / 0


@task()
def sink(value):
    return value


@task()
def audit(rows):
    return len(rows)


@workflow(name="Live Graph")
def live_graph():
    rows = source()
    sink(divide(rows))
    audit(rows)
