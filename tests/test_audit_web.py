"""Issue 6 audit: the points of the status page and the HTTP API that no other test showed
(Flask test client over a real home; the browser checks are in test_web_browser.py)."""

import json
import os
import re
import time

import pytest
from support import web_seed as seed

from localtailr import ACL, KV, Group
from localtailr.platform import blob, jobs, kv, users
from localtailr.platform import status as queries
from localtailr.platform.context import context
from localtailr.sdk.schedule import Schedule
from localtailr.web import api, security
from localtailr.web.app import create_app

XSS = "<script>alert(1)</script>"
READS = {"ls", "get", "exists", "is-member", "acls", "get-acl", "stat", "versions", "runs", "metrics",
         "read", "tail", "history", "diff", "lineage", "show", "io", "check", "dump"}


@pytest.fixture
def home(localtailr_home):
    return localtailr_home.home


@pytest.fixture
def root(home):
    return context(home, "root", "dev")


def signed_in(home, user=None):
    c = create_app(home, user=user).test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {security.token(home)}"
    return c


@pytest.fixture
def client(home):
    return signed_in(home)


def text(client, path, status=200):
    resp = client.get(path)
    assert resp.status_code == status, (path, resp.get_data(as_text=True)[:500])
    return resp.get_data(as_text=True)


def section(body: str, start: str, end: str = "</table>") -> str:
    return body.split(start, 1)[1].split(end, 1)[0]


# -- security ---------------------------------------------------------------------------


def _every_path(app) -> list[str]:
    """One concrete URL for every route of the app (every API operation), but health and static."""
    names = {"run_id": "1", "environment": "dev"}
    paths = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule == "/api/health":
            continue
        if rule.rule == "/api/<cmd>/<sub>":
            paths += [f"/api/{cmd}/{sub}" for cmd, sub in api.ROUTES]
            continue
        paths.append(re.sub(r"<(?:\w+:)?(\w+)>", lambda m: names.get(m.group(1), "x"), rule.rule))
    return paths


def test_every_page_and_api_call_but_health_needs_the_token(home, root):
    seed.job(root, "x")
    app = create_app(home)
    c = app.test_client()
    paths = _every_path(app)
    assert len(paths) > 50 and "/services" in paths and "/api/job/stop" in paths
    wrong = {"Authorization": "Bearer not-the-token"}
    for path in paths:
        if path.startswith("/dt/"):
            continue  # the Datatailr SDK's remote API: its own login (below)
        for method in ("GET", "POST"):
            assert c.open(path, method=method).status_code == 401, (method, path)
            assert c.open(path, method=method, headers=wrong).status_code == 401, (method, path)
        c.set_cookie("localtailr-token-80", "not-the-token")
        assert c.get(path).status_code == 401, path
        c.delete_cookie("localtailr-token-80")
    # /dt/ answers the SDK's login, then only with its session cookie; its help (the
    # command list the SDK ships in api.json) is the one thing it shows anyone
    dt_paths = [p for p in paths if p.startswith("/dt/")]
    assert "/dt/login" in dt_paths and "/dt/api/x/x" in dt_paths
    assert c.post("/dt/login", auth=("root", "not-the-password")).status_code == 401
    for path in dt_paths:
        if path.endswith("/help") or path == "/dt/login":
            continue
        for method in ("GET", "POST", "PUT", "DELETE"):
            assert c.open(path, method=method).status_code == 401, (method, path)
    assert c.get("/api/health").status_code == 200
    assert jobs.runs(root, name="x") == []  # no POST got through


def test_actions_are_post_and_a_get_changes_nothing(client, root):
    for (cmd, sub), (method, _) in api.ROUTES.items():
        assert method == ("GET" if sub in READS else "POST"), (cmd, sub)
    for action in ("stop", "start", "restart", "rerun", "run"):
        assert api.ROUTES[("job", action)][0] == "POST"
    seed.job(root, "svc", "service")
    run_id = seed.run(root, "svc", "running")
    seed.job(root, "nightly")
    failed = seed.run(root, "nightly", "failed", "exit code 1")
    before = [(r["run_id"], r["state"]) for r in jobs.runs(root, all_environments=True)]
    for path in ("job/stop?name=svc", "job/start?name=nightly", "job/restart?name=svc",
                 f"job/rerun?run_id={failed}&failed_only=1", f"job/stop?name=svc&run_id={run_id}"):
        resp = client.get(f"/api/{path}")
        assert resp.status_code == 405 and "is POST" in resp.get_json()["error"], path
    assert [(r["run_id"], r["state"]) for r in jobs.runs(root, all_environments=True)] == before
    assert jobs.get(root, "svc")["desired_state"] != "stopped"


def test_pages_cannot_do_or_show_what_the_caller_could_not(home, root):
    alice_id = users.add(root, "alice")["user_id"]
    alice = context(home, "alice", "dev")
    seed.job(root, "root-job")
    root_run = seed.run(root, "root-job", "failed", "root-only-reason")
    seed.job(root, "root-svc", "service")
    svc_run = seed.run(root, "root-svc", "running")
    seed.metrics(root, svc_run)
    kv.put(root, "root-key", "root-value")
    kv.put(root, "root-secret", "root-secret-value", kind=kv.SECRETS)
    blob.put(root, "root-only.bin", b"x")
    seed.job(alice, "alice-job")
    mine = seed.run(alice, "alice-job", "failed", "alice-reason")
    c = signed_in(home, user="alice")
    hidden = ("root-job", "root-svc", "root-key", "root-value", "root-secret", "root-only.bin",
              "root-only-reason")
    for path in ("/", "/jobs", "/jobs?state=failed", "/services", "/kv", "/secrets", "/blobs",
                 f"/runs/{mine}"):
        body = text(c, path)
        for word in hidden:
            assert word not in body, (path, word)
    assert "alice-job" in text(c, "/jobs") and "alice-reason" in text(c, "/")
    assert '<p class="big">1</p>' in section(text(c, "/"), "<h2>Jobs</h2>", "</div>")
    for path in (f"/runs/{root_run}", "/jobs/dev/root-job", f"/runs/{svc_run}"):
        assert c.get(path).status_code == 403, path
    for path in (f"/api/run/metrics?run_id={svc_run}", f"/api/log/tail?run_id={root_run}",
                 f"/api/run/get?run_id={root_run}", "/api/secret/get?key=root-secret"):
        assert c.get(path).status_code in (403, 404), path
    # the page's own forms, posted by alice: refused, nothing changes
    origin = {"Origin": "http://localhost"}
    for action, form in (("job/stop", {"name": "root-svc", "environment": "dev"}),
                         ("job/restart", {"name": "root-svc"}), ("job/start", {"name": "root-job"}),
                         ("job/rerun", {"run_id": str(root_run)})):
        resp = c.post(f"/api/{action}", data={**form, "next": "/"}, headers=origin)
        assert resp.status_code == 403, action
        assert "root-secret-value" not in resp.get_data(as_text=True)
    assert [r["run_id"] for r in jobs.runs(root, name="root-job")] == [root_run]
    assert jobs.get_run(root, svc_run)["state"] == "running"
    assert jobs.get(root, "root-svc")["desired_state"] != "stopped"
    # nor may alice borrow root's rights
    assert c.get("/?as=root").status_code == 403
    assert c.get("/kv", headers={"X-Localtailr-User": "root"}).status_code == 403
    # a key alice may read shows its value to her
    KV().put("shared", "shared-value", ACL(read=["root", "alice"], write=["root"]))
    assert "shared-value" in text(c, "/kv") and alice_id


def test_user_supplied_text_is_escaped_on_every_page(client, root):
    users.add(root, "mallory", first_name=XSS, last_name=XSS)
    kv.put(root, XSS, XSS)
    kv.put(root, f"secret {XSS}", "s3cr3t-value", kind=kv.SECRETS)
    blob.put(root, f"x/{XSS}.txt", XSS)
    seed.job(root, XSS, "service")
    run_id = seed.run(root, XSS, "running", XSS)
    seed.metrics(root, run_id)
    seed.job(root, "wf", "workflow", workflow=seed.dag((XSS, "b")))
    parent = seed.run(root, "wf", "failed", XSS)
    seed.child(root, parent, XSS, "failed", XSS)
    slug = jobs.ls(root, type="service")[0]["name"]
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    pages = {"/users": escaped, "/kv": escaped, "/secrets": escaped, "/blobs": "&lt;script&gt;",
             "/services": escaped, "/": escaped, "/jobs": "", f"/jobs/dev/{slug}": escaped,
             f"/runs/{run_id}": escaped, f"/runs/{parent}": escaped,
             f"/jobs?state={XSS}": escaped, f"/jobs?type={XSS}": ""}
    for path, shown in pages.items():
        resp = client.get(path)
        body = resp.get_data(as_text=True)
        assert "<script>alert" not in body and "s3cr3t" not in body, path
        assert shown in body, path
    for path in (f"/kv?env={XSS}", f"/blobs?path=../{XSS}", f"/runs/{run_id}?as={XSS}"):
        body = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in body and "&lt;script&gt;" in body, path


def test_secret_values_are_never_in_a_page_nor_an_error(home, root):
    kv.put(root, "api_token", "TOPSECRETVALUE", kind=kv.SECRETS)
    users.add(root, "bob")
    c = signed_in(home)
    for path in ("/", "/secrets", "/secrets?env=dev", "/kv", "/api/secret/ls", "/api/secret/acls?key=api_token",
                 "/api/kv/get?key=api_token", "/api/secret/get?key=nope"):
        assert "TOPSECRETVALUE" not in c.get(path).get_data(as_text=True), path
    bob = signed_in(home, user="bob")
    resp = bob.get("/api/secret/get?key=api_token")
    assert resp.status_code == 403 and "TOPSECRETVALUE" not in resp.get_data(as_text=True)
    resp = bob.post("/api/secret/put", json={"key": "api_token", "value": "NEWVALUE"})
    assert resp.status_code == 403 and "NEWVALUE" not in resp.get_data(as_text=True)


# -- the pages ----------------------------------------------------------------------------


def test_overview_shows_daemon_uptime_and_counts(client, root, home):
    from localtailr import store

    (home.root / "daemon.json").write_text(json.dumps({"pid": os.getpid(), "started_at": time.time() - 95}))
    with store.transaction(root.conn) as conn:
        conn.execute("INSERT INTO tags (name, value) VALUES ('daemon.heartbeat', ?)", (str(time.time()),))
    users.add(root, "alice")
    kv.put(root, "a", "1")
    kv.put(root, "b", "2")
    kv.put(root, "s", "v", kind=kv.SECRETS)
    blob.put(root, "one.bin", b"x" * 2048)
    seed.job(root, "j1")
    seed.job(root, "j2", "service")
    seed.run(root, "j1", "succeeded")
    body = text(client, "/")
    card = section(body, 'id="health-daemon"', "</div>")
    assert re.search(r"up 1m 3\ds", card) and f"pid {os.getpid()}" in card
    assert "scheduler alive" in card and "supervisor alive" in card
    assert '<p class="big">2</p>' in section(body, "<h2>Jobs</h2>", "</div>")
    assert "batch 1" in body and "service 1" in body and "succeeded 1" in body
    assert "2 keys" in body and "1 secret<" in body and "1 blob<" in body and "2.0 KiB" in body
    assert "2 users · 1 group<" in body  # issue 13: "1 secrets" read badly


def test_jobs_page_shows_schedule_next_fire_version_and_last_run(client, root):
    seed.job(root, "nightly", schedule=Schedule(at_hours=[2]).to_dict())
    seed.job(root, "nightly", schedule=Schedule(at_hours=[2]).to_dict())  # version 2
    seed.job(root, "api", "service", environment="pre")
    last = seed.run(root, "nightly", "succeeded")
    sched = queries.schedules(root)[("dev", "nightly")]
    body = text(client, "/jobs")
    row = section(body, 'href="/jobs/dev/nightly"', "</tr>")
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    assert cells[:4] == ["batch", "dev", "v2", cells[3]] and "succeeded" in cells[3]
    assert sched["cron"] in cells[4]
    # issue 13: in the job's zone, named (the server's zone for a schedule without one)
    assert time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(sched["next_fire"])) in cells[5]
    assert f'<a href="/runs/{last}">#{last}</a>' in cells[6] and "ago" in cells[6]
    pre = section(body, 'href="/jobs/pre/api"', "</tr>")
    assert "<td>service</td><td>pre</td>" in pre
    assert "api" in text(client, "/jobs?env=pre") and "nightly" not in text(client, "/jobs?env=pre")


def test_jobs_pages_keep_their_filters(client, root):
    for i in range(30):
        seed.job(root, f"job-{i:02d}")
    for i in range(3):
        seed.job(root, f"svc-{i}", "service")
    body = text(client, "/jobs?type=batch&env=dev")
    assert "page 1 of 2 (30)" in body and "svc-" not in body
    nxt = re.search(r'href="([^"]*page=2[^"]*)"', body).group(1).replace("&amp;", "&")
    assert "type=batch" in nxt and "env=dev" in nxt
    second = text(client, nxt)
    assert "page 2 of 2" in second and "job-29" in second and "svc-" not in second and "job-00" not in second
    assert "newer" in second and "page=1" in second
    assert "page 1 of 1" not in text(client, "/jobs?type=service")  # one page: no pager
    assert text(client, "/jobs?page=99").count("job-") == text(client, "/jobs?page=2").count("job-")
    assert client.get("/jobs?page=x").status_code == 200


def test_run_page_shows_peaks_exit_code_and_the_stream_switch(client, root):
    seed.job(root, "hog")
    run_id = seed.run(root, "hog", "failed", "killed: memory limit 64m exceeded (peak 80m)",
                      peak_cpu=35.0, peak_rss=80 * 2**20, exit_code=-9)
    body = text(client, f"/runs/{run_id}")
    facts = section(body, '<dl class="facts">', "</dl>")
    assert "<dt>CPU peak</dt><dd>35%</dd>" in facts and "<dt>memory peak</dt><dd>80.0 MiB</dd>" in facts
    assert "exit code -9" in body and "memory limit 64m exceeded" in body
    assert 'data-stream="stdout"' in body and 'href="?stream=stderr"' in body
    assert 'class="on" id="stream-stdout"' in body
    err = text(client, f"/runs/{run_id}?stream=stderr")
    assert 'data-stream="stderr"' in err and 'class="on" id="stream-stderr"' in err
    assert 'data-stream="stdout"' in text(client, f"/runs/{run_id}?stream=bogus")
    assert len(re.findall(r"<li>", section(body, 'id="timeline"', "</ol>"))) >= 2


def test_services_page_chart_draws_the_samples(client, root):
    seed.job(root, "svc", "service")
    run_id = seed.run(root, "svc", "running")
    seed.metrics(root, run_id, samples=20)
    body = section(text(client, "/services"), 'id="service-dev-svc"', "</section>")
    cpu, rss = re.findall(r'<svg class="chart".*?</svg>', body, re.S)
    assert "CPU: 29 % now, peak 29 %" in cpu and "memory: 69 MiB now, peak 69 MiB" in rss
    assert len(re.search(r'points="([^"]*)"', cpu).group(1).split()) == 20
    seed.job(root, "idle", "service")
    seed.run(root, "idle", "running")
    assert "no samples yet" in section(text(client, "/services"), 'id="service-dev-idle"', "</section>")


def test_apps_link_to_their_local_url_only(client, root):
    seed.job(root, "dash", "app")
    seed.run(root, "dash", "running", url="http://127.0.0.1:5555/")
    seed.job(root, "odd", "app")
    seed.run(root, "odd", "running", url="javascript:alert(1)")
    body = text(client, "/services")
    dash = section(body, 'id="service-dev-dash"', "</section>")
    assert '<a href="http://127.0.0.1:5555/" class="app-url" rel="noreferrer">' in dash
    odd = section(body, 'id="service-dev-odd"', "</section>")
    assert "app-url" not in odd and "javascript:" not in odd
    assert 'href="http://127.0.0.1:5555/"' in text(client, "/jobs/dev/dash")
    assert "javascript:" not in text(client, "/jobs/dev/odd")


def test_kv_page_per_environment_with_values_for_readers(home, root):
    kv.put(root, "dev-key", "dev-value")
    kv.put(context(home, "root", "pre"), "pre-key", "pre-value")
    users.add(root, "alice")
    users.add(root, "bob")
    Group.add("analysts").add_users(["alice"])
    KV().put("db_url", "sqlite:///x.db", ACL(read=["analysts"], write=["root"]))
    body = text(signed_in(home), "/kv")
    assert "dev-value" in body and "pre-key" not in body and "sqlite:///x.db" in body
    pre = text(signed_in(home), "/kv?env=pre")
    assert "pre-value" in pre and "dev-key" not in pre and '<a href="?env=pre" class="on">' in pre
    assert "sqlite:///x.db" in text(signed_in(home, "alice"), "/kv")  # through her group
    bob = text(signed_in(home, "bob"), "/kv")
    assert "db_url" not in bob and "sqlite" not in bob and "dev-value" not in bob


def test_blobs_page_shows_sizes_and_hashes(client, root):
    info = blob.put(root, "reports/q1.csv", b"a,b\n1,2\n")
    blob.put(root, "big.bin", b"\0" * (3 * 2**20))
    body = text(client, "/blobs")
    row = section(body, ">reports/q1.csv</a></td>", "</tr>")
    assert "8 B" in row and f'title="{info["sha256"]}"' in row and info["sha256"][:16] in row
    assert "3.0 MiB" in section(body, ">big.bin</a></td>", "</tr>")
    assert "big.bin" not in text(client, "/blobs?path=reports")


def test_no_asset_comes_from_another_site(client, root):
    seed.job(root, "svc", "service")
    seed.run(root, "svc", "running", url="http://127.0.0.1:5555/")
    assets = set()
    for path in ("/", "/jobs", "/services", "/users", "/kv", "/secrets", "/blobs", "/jobs/dev/svc", "/runs/1"):
        body = text(client, path)
        for tag in re.findall(r"<(?:script|link|img|iframe|source|video|audio|object|embed)\b[^>]*>", body):
            for url in re.findall(r'(?:src|href|data)="([^"]*)"', tag):
                assert url.startswith("/") and not url.startswith("//"), (path, tag)
                assets.add(url.split("?")[0])
        assert "@import" not in body and "url(" not in body.replace('url(#arrow)', "")
    assert assets >= {"/static/style.css", "/static/app.js"}
    anonymous = create_app(client.application.config["LOCALTAILR_HOME"]).test_client()
    for url in assets:  # served by the app itself
        resp = anonymous.get(url)
        assert resp.status_code == 200, url
        content = resp.get_data(as_text=True)
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]", content.replace("http://www.w3.org", "")), url
    csp = client.get("/").headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp


# -- the README's commands ----------------------------------------------------------------------


def test_reset_of_the_sandbox_keeps_its_readme(cli, tmp_path):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    (sandbox / "README.md").write_text("# sandbox\n")
    assert cli("--home", str(sandbox), "init").returncode == 0
    assert cli("--home", str(sandbox), "kv", "put", "a", "1").returncode == 0
    done = cli("--home", str(sandbox), "reset", "--yes")
    assert done.returncode == 0, done.stderr
    assert [p.name for p in sandbox.iterdir()] == ["README.md"]
    assert cli("--home", str(sandbox), "kv", "get", "a").returncode == 1  # gone


def test_kv_secrets_and_blobs_pages_page_what_the_caller_may_read(home, root):
    """Pages of 100, in name order, counting only what the caller may read (the listing is
    paged in SQL); a page past the end shows the last."""
    alice = users.add(root, "alice")["user_id"]
    with_alice = {"read": [alice], "write": [0]}
    for i in range(230):
        kv.put(root, f"k{i:03d}", f"v{i}", with_alice if i % 2 else None)
        if i < 120:
            blob.put(root, f"r/b{i:03d}", b"x", with_alice if i % 2 else None)
    kv.put(root, "s-token", "x", kind=kv.SECRETS)
    keys = lambda body: re.findall(r'<td class="key"><a href="/kv/history[^"]*"[^>]*>(k\d+)</a></td>', body)
    assert keys(text(signed_in(home), "/kv?page=3")) == [f"k{i:03d}" for i in range(200, 230)]
    mine = text(signed_in(home, "alice"), "/kv?page=2")
    assert keys(mine) == [f"k{i:03d}" for i in range(201, 230, 2)]
    assert keys(text(signed_in(home, "alice"), "/kv?page=9")) == keys(mine)
    blobs = lambda body: re.findall(r"<td><a href=\"/blob\?name=[^\"]*\">(r/b\d+)</a></td>", body)
    assert blobs(text(signed_in(home), "/blobs?page=2")) == [f"r/b{i:03d}" for i in range(100, 120)]
    assert blobs(text(signed_in(home, "alice"), "/blobs?path=r")) == [f"r/b{i:03d}" for i in range(1, 120, 2)]
    assert blobs(text(signed_in(home), "/blobs?path=q")) == []
    assert "s-token" in text(signed_in(home), "/secrets")


def test_overview_counts_follow_puts_replacements_and_deletes(home, root):
    """The overview's counts of keys, secrets and blobs (kept by triggers for an admin,
    counted in SQL for anyone else) follow every change."""
    alice = users.add(root, "alice")["user_id"]
    kv.put(root, "a", "1")
    kv.put(root, "b", "2", {"read": [alice]})
    kv.put(root, "b", "2b")  # a replacement is no new key
    kv.put(context(home, "root", "pre"), "c", "3")
    kv.put(root, "s", "x", kind=kv.SECRETS)
    blob.put(root, "x.bin", b"12345")
    blob.put(root, "y.bin", b"1", {"read": [alice]})
    blob.put(root, "x.bin", b"123")  # replaced: 3 bytes now
    kv.delete(root, "a")
    admin = queries.counts(root)
    assert (admin["keys"], admin["secrets"], admin["blobs"], admin["blob_bytes"]) == (2, 1, 2, 4)
    mine = queries.counts(context(home, "alice", "dev"))
    assert (mine["keys"], mine["secrets"], mine["blobs"], mine["blob_bytes"]) == (1, 0, 1, 1)
    blob.delete(root, "y.bin")
    assert queries.counts(root)["blob_bytes"] == 3


def test_listing_pages_link_to_the_next_without_counting(home, root):
    for i in range(150):
        kv.put(root, f"k{i:03d}", "v")
    first, second = text(signed_in(home), "/kv"), text(signed_in(home), "/kv?page=2")
    assert "page=2" in first and "next" in first and "page 1" in first
    assert "next" not in second and "newer" in second and "page 2" in second
