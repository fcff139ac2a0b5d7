"""The status page against the real daemon: a real job's log follows as it prints, and a
real workflow's failed task is red in its graph."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from support import live_web_jobs
from support.browser import browser, shot, sign_in, wait  # noqa: F401 (fixtures)

from localtailr.platform import jobs
from localtailr.platform.context import context
from localtailr.runtime.daemon import control
from localtailr.sdk.job import BatchJob

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def live(localtailr_home):
    info = control.ensure_running(localtailr_home.home, quiet=True)
    yield info["url"].rstrip("/")
    control.stop(localtailr_home.home)


def test_log_of_a_real_job_follows_as_it_prints(live, browser, localtailr_home):  # noqa: F811
    job = BatchJob("Live Printer", live_web_jobs.printer, python_version="auto")
    run_id = job.run()["run_id"]
    sign_in(browser, live, localtailr_home.home)
    browser.get(f"{live}/runs/{run_id}")
    log = browser.find_element(By.ID, "log")
    wait(browser, lambda d: "live line 2" in log.text, "the job's first lines")
    assert jobs.get_run(context(), run_id)["state"] == "running"
    seen = len(log.text.splitlines())
    wait(browser, lambda d: len(log.text.splitlines()) >= seen + 4, "lines printed after the page opened")
    shot(browser, "live-run-log")
    job.stop()


def test_failed_task_of_a_real_workflow_is_red(live, browser, localtailr_home):  # noqa: F811
    run = live_web_jobs.live_graph()
    assert run.wait(timeout=180) == "failed"
    states = {t["task_name"]: t["state"] for t in run.tasks()}
    assert states == {"source": "succeeded", "divide": "failed", "sink": "skipped", "audit": "succeeded"}
    sign_in(browser, live, localtailr_home.home)
    browser.get(f"{live}/runs/{run.run_id}")
    fill = lambda name: browser.execute_script(  # noqa: E731
        "return getComputedStyle(document.querySelector(arguments[0])).fill;",
        f'g.node[data-task="{name}"] rect')
    assert fill("divide") == "rgb(198, 40, 40)"
    assert fill("source") == "rgb(31, 138, 76)"
    shot(browser, "live-workflow-graph")
    browser.find_element(By.CSS_SELECTOR, 'g.node[data-task="divide"]').click()
    wait(browser, lambda d: "ZeroDivisionError" in d.find_element(By.ID, "run-reason").text,
         "the failed task's reason")
