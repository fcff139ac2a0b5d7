"""Issue 6, the status page driven as a person would: Debian's headless chromium (selenium).

Each scenario saves a screenshot to test-results/screenshots/. Runs are seeded through the
service layer (their later states as the daemon records them), except the service restart,
which uses a real daemon and a real service process killed by the test.
"""

import threading
import time

import psutil
import pytest
from support import web_seed as seed
from support.browser import By, browser, no_alert, shot, sign_in, site, wait  # noqa: F401 (fixtures)

from localtailr.platform import blob, kv, users
from localtailr.platform.context import context

pytestmark = pytest.mark.browser

XSS = "<script>alert(1)</script>"

def _seed(root) -> dict:
    users.add(root, "alice", first_name="Alice")
    kv.put(root, "db_url", "postgres://localhost/app")
    kv.put(root, "api_token", "TOPSECRETVALUE", kind=kv.SECRETS)
    blob.put(root, "reports/q1.csv", b"a,b\n1,2\n")
    seed.job(root, "nightly")
    failed = seed.run(root, "nightly", "failed", "exit code 1: ValueError('bad input 42')")
    seed.job(root, "wf", "workflow", workflow=seed.dag(("extract", "transform"), ("transform", "load"),
                                                        ("extract", "audit")))
    parent = seed.run(root, "wf", "failed", "task transform failed")
    children = {
        "extract": seed.child(root, parent, "extract", "succeeded"),
        "transform": seed.child(root, parent, "transform", "failed", "ZeroDivisionError: division by zero"),
        "load": seed.child(root, parent, "load", "skipped", "upstream transform failed"),
        "audit": seed.child(root, parent, "audit", "succeeded"),
    }
    return {"failed": failed, "parent": parent, "children": children}


def test_overview_then_click_through_to_a_failed_run(site, browser, localtailr_home):
    home = localtailr_home.home
    ids = _seed(context(home, "root", "dev"))
    sign_in(browser, site, home)
    shot(browser, "overview")
    link = browser.find_element(By.CSS_SELECTOR, f'#failures a[href="/runs/{ids["failed"]}"]')
    link.click()
    wait(browser, lambda d: d.current_url.endswith(f"/runs/{ids['failed']}"), "the run page")
    assert "bad input 42" in browser.find_element(By.ID, "run-reason").text
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline li")
    shot(browser, "run-failed")
    browser.find_element(By.XPATH, "//button[text()='Rerun']").click()  # a same-origin form POST
    wait(browser, lambda d: d.current_url.rsplit("/", 1)[-1] not in ("", str(ids["failed"])), "the new run")
    assert browser.find_element(By.CSS_SELECTOR, "h1").text.startswith("Run #")
    assert "rerun" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    for name, path in (("jobs", "/jobs"), ("users", "/users"), ("kv", "/kv"), ("secrets", "/secrets"),
                       ("blobs", "/blobs"), ("services", "/services")):
        browser.get(site + path)
        assert browser.find_element(By.TAG_NAME, "h1").text
        assert "TOPSECRETVALUE" not in browser.page_source
        shot(browser, name)
    browser.set_window_size(390, 844)  # a phone
    browser.get(site + "/")
    shot(browser, "overview-phone")
    browser.set_window_size(1280, 900)


def test_log_follows_while_the_job_prints(site, browser, localtailr_home):
    home = localtailr_home.home
    root = context(home, "root", "dev")
    seed.job(root, "printer")
    run_id = seed.run(root, "printer", "running")
    folder = home.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stdout").write_text("starting\n")
    (folder / "stderr").write_text("a warning on stderr\n")
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set() and i < 400:
            with open(folder / "stdout", "a") as f:
                f.write(f"tick {i}\n")
            i += 1
            time.sleep(0.05)

    sign_in(browser, site, home)
    browser.get(f"{site}/runs/{run_id}")
    log = browser.find_element(By.ID, "log")
    wait(browser, lambda d: "starting" in log.text, "the log's first line")
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait(browser, lambda d: "tick 20" in log.text, "lines printed after the page opened")
        seen = log.text
        wait(browser, lambda d: len(log.text) > len(seen), "the log to keep growing")
    finally:
        stop.set()
        thread.join()
    with open(folder / "stdout", "a") as f:
        f.write("the last line\n")
    wait(browser, lambda d: "the last line" in log.text, "the last line")
    lines = log.text.splitlines()
    assert lines.count("starting") == 1 and len(lines) == len(set(lines))  # nothing twice
    shot(browser, "run-log-following")
    seed.set_state(root, run_id, "succeeded")
    wait(browser, lambda d: "end of log" in d.find_element(By.ID, "log-status").text, "the end of the log")
    browser.find_element(By.ID, "stream-stderr").click()
    wait(browser, lambda d: "a warning on stderr" in d.find_element(By.ID, "log").text, "stderr")
    assert "tick" not in browser.find_element(By.ID, "log").text
    shot(browser, "run-log-stderr")


def test_failed_task_is_red_in_the_workflow_graph(site, browser, localtailr_home):
    home = localtailr_home.home
    ids = _seed(context(home, "root", "dev"))
    sign_in(browser, site, home)
    browser.get(f"{site}/runs/{ids['parent']}")
    fill = lambda task: browser.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0])).fill;",
        f'g.node[data-task="{task}"] rect')
    assert fill("transform") == "rgb(198, 40, 40)"  # red
    assert fill("extract") == "rgb(31, 138, 76)"  # green
    assert fill("load") != fill("transform")
    shot(browser, "workflow-graph")
    browser.find_element(By.CSS_SELECTOR, 'g.node[data-task="transform"]').click()
    wait(browser, lambda d: d.current_url.endswith(f"/runs/{ids['children']['transform']}"), "the task's run")
    assert "ZeroDivisionError" in browser.find_element(By.ID, "run-reason").text
    shot(browser, "workflow-task-run")


def test_script_in_names_shows_as_text(site, browser, localtailr_home):
    home = localtailr_home.home
    root = context(home, "root", "dev")
    kv.put(root, XSS, XSS)
    seed.job(root, XSS)
    run_id = seed.run(root, XSS, "failed", XSS)
    sign_in(browser, site, home)
    for name, path in (("escaped-kv", "/kv"), ("escaped-job", "/jobs/dev/script-alert-1-script"),
                       ("escaped-run", f"/runs/{run_id}"), ("escaped-overview", "/")):
        browser.get(site + path)
        time.sleep(0.2)  # give a script, if one were injected, the time to run
        assert no_alert(browser), path
        assert XSS in browser.find_element(By.TAG_NAME, "main").text, path
        shot(browser, name)


@pytest.mark.slow
def test_a_service_restart_appears_after_the_test_kills_it(site, browser, localtailr_home, monkeypatch):
    from support.runtime_support import submit, wait_for, wait_state

    from localtailr.runtime.daemon import control

    home = localtailr_home.home
    monkeypatch.setenv("LOCALTAILR_STOP_GRACE", "2")
    info = control.ensure_running(home, quiet=True)
    try:
        base = info["url"].rstrip("/") if info.get("url") else site  # the daemon's own page when it has one
        run = submit(home, "ticker", "sleep_forever", type="service")
        row = wait_state(home, run["run_id"], "running", timeout=120)
        sign_in(browser, base, home)
        browser.get(base + "/services")
        section = browser.find_element(By.ID, "service-dev-ticker")
        assert section.find_element(By.CLASS_NAME, "restarts").text == "0"
        wait_for(lambda: psutil.pid_exists(row["pid"]), 30, "the service process")
        psutil.Process(row["pid"]).kill()  # the service the test started, by its pid
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#service-dev-ticker tr.trigger-restart"),
             "a restart row on the services page")
        assert browser.find_element(By.CSS_SELECTOR, "#service-dev-ticker .restarts").text == "1"
        assert "failed" in browser.find_element(By.ID, "service-dev-ticker").text
        shot(browser, "service-restarted")
        browser.get(base + "/")
        assert "\nup " in browser.find_element(By.ID, "health-daemon").text
        shot(browser, "overview-with-daemon")
    finally:
        control.stop(home)


def test_every_page_fits_a_phone_screen(site, browser, localtailr_home):
    home = localtailr_home.home
    root = context(home, "root", "dev")
    ids = _seed(root)
    seed.job(root, "svc", "service")
    running = seed.run(root, "svc", "running", url="http://127.0.0.1:5555/")
    seed.metrics(root, running)
    sign_in(browser, site, home)
    browser.set_window_size(390, 844)  # a phone
    try:
        for name, path in (("overview", "/"), ("jobs", "/jobs"), ("services", "/services"),
                           ("users", "/users"), ("kv", "/kv"), ("secrets", "/secrets"), ("blobs", "/blobs"),
                           ("job", "/jobs/dev/nightly"), ("run", f"/runs/{ids['failed']}"),
                           ("workflow", f"/runs/{ids['parent']}")):
            browser.get(site + path)
            inner = browser.execute_script("return window.innerWidth;")
            page = browser.execute_script("return document.documentElement.scrollWidth;")
            assert page <= inner, (path, page, inner)  # wide tables and graphs scroll inside the page
            font = browser.execute_script("return parseFloat(getComputedStyle(document.body).fontSize);")
            assert font >= 12, path
            shot(browser, f"phone-{name}")
    finally:
        browser.set_window_size(1280, 900)


def test_script_in_log_lines_blobs_users_and_secrets_shows_as_text(site, browser, localtailr_home):
    home = localtailr_home.home
    root = context(home, "root", "dev")
    users.add(root, "mallory", first_name=XSS)
    blob.put(root, f"x/{XSS}.txt", b"x")
    kv.put(root, f"secret {XSS}", "TOPSECRETVALUE", kind=kv.SECRETS)
    seed.job(root, "printer")
    run_id = seed.run(root, "printer", "running")
    folder = home.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stdout").write_text(f"before\n{XSS}\n<img src=x onerror=alert(2)>\n")
    sign_in(browser, site, home)
    browser.get(f"{site}/runs/{run_id}")
    wait(browser, lambda d: "onerror" in d.find_element(By.ID, "log").text, "the log's lines")
    time.sleep(0.2)
    assert no_alert(browser)
    assert XSS in browser.find_element(By.ID, "log").text
    assert not browser.find_elements(By.CSS_SELECTOR, "#log script, #log img")
    shot(browser, "escaped-log")
    for name, path in (("escaped-users", "/users"), ("escaped-blobs", "/blobs"), ("escaped-secrets", "/secrets")):
        browser.get(site + path)
        time.sleep(0.2)
        assert no_alert(browser), path
        assert "<script>alert(1)<" in browser.find_element(By.TAG_NAME, "main").text, path
        assert "TOPSECRETVALUE" not in browser.page_source
        shot(browser, name)
