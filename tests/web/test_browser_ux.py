"""Issue 13, the status page as a newcomer reads it (headless chromium, screenshots kept).

Tables fill their width and scroll on a phone; only the actions the state and the caller
allow; next fire times in the job's zone and the viewer's; blobs and task results one click
away (a result's repr, never its pickle unpickled); the first page of a log in the HTML;
a search box; a job's run history drawn as SVG.
"""

import pickle
import time
from pathlib import Path

import pytest
from support import web_seed as seed
from support.browser import By, browser, shot, sign_in, site, wait  # noqa: F401 (fixtures)

from localtailr import store
from localtailr.platform import blob, jobs, kv, users
from localtailr.platform.context import context
from localtailr.web import security
from localtailr.web.app import create_app

pytestmark = pytest.mark.browser


def _root(localtailr_home):
    return context(localtailr_home.home, "root", "dev")


def _result(ctx, run_id: int, value: object, data: bytes | None = None) -> None:
    """What a task's own process stores: the pickle and, beside it, the repr."""
    with store.transaction(ctx.conn) as conn:
        conn.execute("INSERT INTO run_results (run_id, data, repr) VALUES (?, ?, ?)",
                     (run_id, data if data is not None else pickle.dumps(value), repr(value)))


def _schedule(ctx, name: str, cron: str, zone: str, next_fire: float) -> None:
    with store.transaction(ctx.conn) as conn:
        job_id = conn.execute("SELECT job_id FROM jobs WHERE name = ?", (name,)).fetchone()[0]
        conn.execute("INSERT OR REPLACE INTO schedules (job_id, cron, timezone, next_fire) VALUES (?, ?, ?, ?)",
                     (job_id, cron, zone, next_fire))


def _box(driver, css: str) -> dict:
    return driver.execute_script(
        "var e = document.querySelector(arguments[0]); var r = e.getBoundingClientRect();"
        "return {width: r.width, scroll: e.scrollWidth, client: e.clientWidth};", css)


def test_tables_fill_their_width_have_headings_and_say_things_once(site, browser, localtailr_home):
    root = _root(localtailr_home)
    users.add(root, "alice", first_name="Alice")
    kv.put(root, "db_url", "postgres://x")
    kv.put(root, "api_token", "s3cret", kind=kv.SECRETS)
    blob.put(root, "reports/q1.csv", b"a,b\n")
    seed.job(root, "nightly")
    ok = seed.run(root, "nightly", "succeeded", "exit code 0", exit_code=0)
    sign_in(browser, site, localtailr_home.home)
    for path, table in (("/users", "#users"), ("/jobs", "#jobs"), ("/kv", "#kv")):
        browser.get(site + path)
        whole, row = _box(browser, table), _box(browser, f"{table} thead tr")
        main = browser.execute_script("return document.querySelector('main').clientWidth;")
        assert whole["width"] > main * 0.9, path  # the table spans its box ...
        assert abs(whole["width"] - row["width"]) < 2, path  # ... and so do its columns
    browser.get(site + "/users")
    headings = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#users th")]
    assert all(h.strip() for h in headings), headings  # root's "system" has a heading
    shot(browser, "ux-users")
    browser.get(site + "/")
    cards = browser.find_element(By.CSS_SELECTOR, ".cards").text
    assert "1 secret" in cards and "1 secrets" not in cards and "1 blob " in cards + " "
    assert "1 key" in cards and "1 keys" not in cards
    browser.get(f"{site}/runs/{ok}")
    header = browser.find_element(By.CSS_SELECTOR, "main > p").text
    assert header.count("exit code 0") == 1, header
    shot(browser, "ux-run-exit-code-once")


def test_only_the_actions_the_state_and_the_caller_allow(site, browser, localtailr_home):
    root = _root(localtailr_home)
    alice = users.add(root, "alice")
    seed.job(root, "wf", "workflow", workflow=seed.dag(("a", "b")))
    done = seed.run(root, "wf", "succeeded")
    seed.job(root, "dash", "app")
    seed.run(root, "dash", "killed", "stopped by root")
    with store.transaction(root.conn) as conn:
        conn.execute("UPDATE jobs SET desired_state = 'stopped' WHERE name = 'dash'")
    seed.job(root, "api", "service")
    seed.run(root, "api", "running")
    jobs.save(root, {"name": "shared", "type": "batch", "entrypoint": seed.ENTRY},
              {"read": [alice["user_id"], 0], "write": [0], "operate": [0]})
    seed.run(root, "shared", "running")
    sign_in(browser, site, localtailr_home.home)

    def buttons(path):
        browser.get(site + path)
        return [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#actions button")]

    assert buttons("/jobs/dev/wf") == ["Run now"]  # succeeded: nothing to stop
    assert "Stop" not in buttons(f"/runs/{done}")
    assert buttons("/jobs/dev/dash") == ["Start"]  # a stopped app starts, it does not stop
    shot(browser, "ux-actions-stopped-app")
    assert buttons("/jobs/dev/api") == ["Restart", "Stop"]
    assert buttons("/jobs/dev/shared") == ["Run now", "Stop"]
    assert buttons("/jobs/dev/shared?as=alice") == []  # alice may read, not operate
    shot(browser, "ux-actions-read-only")


def test_next_fire_in_the_jobs_zone_and_the_viewers(site, browser, localtailr_home):
    root = _root(localtailr_home)
    seed.job(root, "tokyo")
    at = time.time() + 86400
    _schedule(root, "tokyo", "0 0 9 * * *", "Asia/Tokyo", at)
    sign_in(browser, site, localtailr_home.home)
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    try:
        for path in ("/jobs", "/jobs/dev/tokyo"):
            browser.get(site + path)
            fire = browser.find_element(By.CSS_SELECTOR, "time.fire")
            wait(browser, lambda d, f=fire: f.find_elements(By.CSS_SELECTOR, ".local"), "the viewer's time")
            text = fire.text
            assert "Asia/Tokyo" in text, text
            assert time.strftime("%H:%M", time.gmtime(at + 9 * 3600)) in text  # Tokyo is UTC+9
            assert "your time" in text and ("EST" in text or "EDT" in text or "GMT-" in text), text
        shot(browser, "ux-next-fire-zones")
    finally:
        browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})


def test_a_blob_name_opens_its_size_hash_acl_and_download(site, browser, localtailr_home):
    root = _root(localtailr_home)
    users.add(root, "alice")
    info = blob.put(root, "reports/2026/q1.csv", b"region,revenue\nemea,12\n")
    blob.set_acl(root, "reports/2026/q1.csv", {"read": [1, 0], "write": [0]})
    sign_in(browser, site, localtailr_home.home)
    browser.get(site + "/blobs")
    browser.find_element(By.LINK_TEXT, "reports/2026/q1.csv").click()
    wait(browser, lambda d: d.find_elements(By.ID, "blob"), "the blob's page")
    facts = browser.find_element(By.ID, "blob").text
    assert info["sha256"] in facts and "23 bytes" in facts
    assert browser.find_element(By.ID, "blob-acl").text == "read: user:root, user:alice; write: user:root"
    shot(browser, "ux-blob")
    href = browser.find_element(By.ID, "download").get_attribute("href")
    body = browser.execute_script(
        "return fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text());", href)
    assert body == "region,revenue\nemea,12\n"


def test_a_tasks_result_shows_its_repr_and_the_pickle_is_never_loaded(site, browser, localtailr_home, tmp_path):
    root = _root(localtailr_home)
    seed.job(root, "wf", "workflow", workflow=seed.dag(("extract", "total")))
    parent = seed.run(root, "wf", "succeeded")
    extract = seed.child(root, parent, "extract", "succeeded")
    total = seed.child(root, parent, "total", "succeeded")
    _result(root, extract, {"rows": list(range(300))})
    marker = tmp_path / "unpickled"

    class Trap:  # unpickling this would create the marker file
        def __reduce__(self):
            return (Path.touch, (marker,))

    _result(root, total, "the total", data=pickle.dumps(Trap()))
    sign_in(browser, site, localtailr_home.home)
    browser.get(f"{site}/runs/{parent}")
    cells = browser.find_element(By.ID, "tasks").text
    assert "{'rows': [0, 1, 2" in cells and "'the total'" in cells
    shot(browser, "ux-workflow-results")
    browser.get(f"{site}/runs/{extract}")
    shown = browser.find_element(By.ID, "result").text
    assert shown.startswith("{'rows': [0, 1, 2") and shown.endswith("…")  # a short repr
    href = browser.find_element(By.ID, "result-download").get_attribute("href")
    body = browser.execute_script(
        "return fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text());", href)
    assert body == repr({"rows": list(range(300))})
    browser.get(f"{site}/runs/{total}")
    assert browser.find_element(By.ID, "result").text == "'the total'"
    shot(browser, "ux-task-result")
    assert not marker.exists()  # the server showed the repr; it never loaded the pickle


def test_at_420_pixels_wide_tables_scroll_inside_the_page(site, browser, localtailr_home):
    root = _root(localtailr_home)
    for i in range(3):
        seed.job(root, f"a-rather-long-job-name-that-does-not-fit-on-a-phone-{i}")
    sign_in(browser, site, localtailr_home.home)
    browser.set_window_size(420, 900)
    try:
        browser.get(site + "/jobs")
        inner = browser.execute_script("return window.innerWidth;")
        page = browser.execute_script("return document.documentElement.scrollWidth;")
        assert page <= inner
        box = _box(browser, "#jobs")
        wrapper = browser.execute_script(
            "var e = document.querySelector('#jobs').parentElement; return [e.scrollWidth, e.clientWidth];")
        assert wrapper[0] > wrapper[1] and box["width"] > inner  # the table scrolls in its box
        browser.execute_script("document.querySelector('#jobs').parentElement.scrollLeft = 10000;")
        last = browser.find_element(By.CSS_SELECTOR, "#jobs thead th:last-child")
        right = browser.execute_script("return arguments[0].getBoundingClientRect().right;", last)
        assert right <= inner + 1  # the last column can be scrolled into view
        shot(browser, "ux-phone-420-jobs")
    finally:
        browser.set_window_size(1280, 900)


def test_search_finds_jobs_keys_and_blobs_by_name(site, browser, localtailr_home):
    root = _root(localtailr_home)
    seed.job(root, "sales-report")
    seed.job(root, "cleanup")
    kv.put(root, "sales_db", "x")
    kv.put(root, "other", "y")
    blob.put(root, "exports/sales.csv", b"1")
    sign_in(browser, site, localtailr_home.home)
    box = browser.find_element(By.ID, "search")
    box.send_keys("SALES\n")
    wait(browser, lambda d: "/search" in d.current_url, "the search page")
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#found-jobs a")] == ["sales-report"]
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#found-keys a")] == ["sales_db"]
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#found-blobs a")] == ["exports/sales.csv"]
    shot(browser, "ux-search")
    browser.find_element(By.LINK_TEXT, "exports/sales.csv").click()
    wait(browser, lambda d: d.find_elements(By.ID, "blob"), "the blob from the search")


def test_a_jobs_run_history_is_an_svg_chart(site, browser, localtailr_home):
    root = _root(localtailr_home)
    seed.job(root, "nightly")
    states = ["succeeded", "failed", "succeeded", "killed", "succeeded"]
    ids = [seed.run(root, "nightly", s, ago=10.0 * (i + 1)) for i, s in enumerate(states)]
    sign_in(browser, site, localtailr_home.home)
    browser.get(site + "/jobs/dev/nightly")
    bars = browser.find_elements(By.CSS_SELECTOR, "#history svg.history g.bar")
    assert [int(b.get_attribute("data-run")) for b in bars] == ids  # oldest first
    fill = lambda run: browser.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0])).fill;", f'g.bar[data-run="{run}"] rect')
    assert fill(ids[1]) == "rgb(198, 40, 40)" and fill(ids[0]) == "rgb(31, 138, 76)"
    heights = [float(b.find_element(By.TAG_NAME, "rect").get_attribute("height")) for b in bars]
    assert heights[4] > heights[0]  # the run that ran longest is the tallest
    shot(browser, "ux-run-history")
    bars[1].click()
    wait(browser, lambda d: d.current_url.endswith(f"/runs/{ids[1]}"), "the run behind the bar")


def test_the_first_page_of_a_log_is_in_the_html(localtailr_home):
    root = _root(localtailr_home)
    seed.job(root, "printer")
    run_id = seed.run(root, "printer", "running")
    folder = localtailr_home.home.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stdout").write_text("first line\n<b>not bold</b>\n")
    client = create_app(localtailr_home.home).test_client()
    client.get(f"/?token={security.token(localtailr_home.home)}")
    html = client.get(f"/runs/{run_id}").get_data(as_text=True)
    pre = html.split('id="log"', 1)[1].split("</pre>", 1)[0]
    assert "first line\n&lt;b&gt;not bold&lt;/b&gt;" in pre  # rendered, and escaped
    cursor = pre.split('data-cursor="', 1)[1].split('"', 1)[0]
    assert cursor.startswith("27:")  # the script follows from where the page ended
