"""The jobs of the living demo that ``make run`` starts (importable, so any job can run them)."""

from __future__ import annotations

import os
import random
import time

from .sdk.schedule import Schedule
from .sdk.workflow import task, workflow


def heartbeat():
    """A service: prints a line a second, forever."""
    n = 0
    while True:
        n += 1
        print(f"heartbeat {n} from run {os.environ.get('DATATAILR_RUN_ID')}", flush=True)
        time.sleep(1)


def hello_app():
    """An app: a small Flask page."""
    from flask import Flask  # only in the app's process, not the demo's batch jobs

    app = Flask("hello")

    @app.route("/")
    def index():
        return "<h1>Hello from a localtailr app</h1><p>Served by the supervisor on a local port.</p>"

    return app


@task()
def fetch_prices():
    return [round(100 + random.uniform(-5, 5), 2) for _ in range(10)]


@task()
def average(prices):
    return sum(prices) / len(prices)


@task()
def spread(prices):
    return max(prices) - min(prices)


@task()
def report(avg, width, rundate):
    return f"{rundate}: average {avg:.2f}, spread {width:.2f}"


@workflow(name="Price Report", schedule=Schedule(every_minute=5))
def price_report():
    prices = fetch_prices()
    report(average(prices), spread(prices))
