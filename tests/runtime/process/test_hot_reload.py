"""An app in dev restarts when its source file changes; one in prod does not."""

from __future__ import annotations

import importlib
import sys
import time
import urllib.request

from support import runtime_support
from support.runtime_support import wait_for

from localtailr import store
from localtailr.platform import jobs
from localtailr.platform.context import context
from localtailr.sdk.job import App

daemon = runtime_support.daemon  # the fixture: a real daemon for the test's home

SOURCE = '''from flask import Flask


def make():
    app = Flask("reload")

    @app.route("/")
    def index():
        return "{text}"

    return app
'''


def fetch(url: str) -> str:
    return urllib.request.urlopen(url, timeout=10).read().decode()


def deploy(tmp_path, module: str, environment: str):
    path = tmp_path / f"{module}.py"
    path.write_text(SOURCE.format(text="version one"))
    sys.path.insert(0, str(tmp_path))
    try:
        mod = importlib.import_module(module)
    finally:
        sys.path.remove(str(tmp_path))
    App(module, entrypoint=mod.make, framework="flask", environment=environment,
        python_version="auto").run()
    job = wait_for(lambda: (j := jobs.get(context(environment=environment), module))["url"] and j,
                   90, f"{module} to serve")
    assert fetch(job["url"]) == "version one"
    return path, job


def test_dev_app_reloads_when_its_source_changes(localtailr_home, daemon, tmp_path):
    path, job = deploy(tmp_path, "reload_dev_app", "dev")
    # at once: the daemon may not be watching yet, and must still notice (the run's start time)
    path.write_text(SOURCE.format(text="version two"))

    def serving_new():
        url = jobs.get(context(), "reload_dev_app")["url"]
        try:
            return url and fetch(url) == "version two"
        except OSError:
            return False

    wait_for(serving_new, 90, "the app to serve its new source")
    events = store.connection(localtailr_home.home).execute(
        "SELECT detail FROM run_events WHERE state = 'reloaded'").fetchall()
    assert len(events) == 1 and "reload_dev_app.py" in events[0]["detail"]


def test_prod_app_is_not_reloaded(localtailr_home, daemon, tmp_path):
    path, job = deploy(tmp_path, "reload_prod_app", "prod")
    time.sleep(0.5)
    path.write_text(SOURCE.format(text="version two"))
    time.sleep(3)
    assert fetch(jobs.get(context(environment="prod"), "reload_prod_app")["url"]) == "version one"
    assert store.connection(localtailr_home.home).execute(
        "SELECT count(*) FROM run_events WHERE state = 'reloaded'").fetchone()[0] == 0
