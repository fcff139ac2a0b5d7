"""Issue 9: a running Service's URL is shown as an app's is (``svc.url``, ``job ls``)."""

from __future__ import annotations

import urllib.request

import pytest
from support import runtime_support
from support.runtime_support import submit, wait_for

from localtailr import Service
from localtailr.platform import jobs
from localtailr.platform.context import context

daemon = runtime_support.daemon  # the fixture: a real daemon for the test's home


@pytest.mark.slow
def test_a_running_service_shows_its_url(localtailr_home, daemon, cli):
    home = localtailr_home.home
    run = submit(home, "pricer", "http_service", type="service")
    url = wait_for(lambda: jobs.get(context(), "pricer")["url"], 120, "the service's url")
    assert url == f"http://127.0.0.1:{jobs.get_run(context(), run['run_id'])['port']}/"
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"hello from the service"
    svc = Service("pricer", runtime_support.entry)  # any callable: only its name is read
    assert svc.url == url
    listed = cli("job", "ls")
    assert url in listed.stdout, listed.stdout
    assert any(e[0] == "answering" for e in runtime_support.events(home, run["run_id"]))


@pytest.mark.slow
def test_a_service_that_serves_nothing_has_no_url(localtailr_home, daemon):
    home = localtailr_home.home
    run = submit(home, "worker", "sleep_forever", type="service")
    runtime_support.wait_state(home, run["run_id"], "running")
    wait_for(lambda: "up" in runtime_support.read(home, run["run_id"]), 60, "the worker")
    assert jobs.get(context(), "worker")["url"] is None
