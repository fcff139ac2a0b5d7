"""Issue 6, the HTTP API and the pages over the service layer (Flask test client, real SQLite)."""

import json
import re

import pytest
from support import web_seed as seed

from localtailr.platform import blob, jobs, kv, users
from localtailr.platform.context import context
from localtailr.web import security
from localtailr.web.app import create_app

XSS = "<script>alert(1)</script>"


@pytest.fixture
def home(localtailr_home):
    return localtailr_home.home


@pytest.fixture
def root(home):
    return context(home, "root", "dev")


@pytest.fixture
def client(home):
    app = create_app(home)
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {security.token(home)}"
    return c


def get_json(client, path, status=200, **kw):
    resp = client.get(path, **kw)
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()


def post_json(client, path, body, status=200, **kw):
    resp = client.post(path, json=body, **kw)
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()


# -- the API --------------------------------------------------------------------------


def test_health_needs_no_token_and_says_the_daemon_is_down(home):
    data = create_app(home).test_client().get("/api/health").get_json()
    assert data["ok"] is False
    assert data["daemon"]["alive"] is False and data["daemon"]["pid"] is None
    assert data["scheduler"]["alive"] is False and data["supervisor"]["alive"] is False
    assert data["version"] and data["web"]["uptime"] >= 0


def test_health_reads_daemon_json_and_heartbeat(home, root):
    import os
    import time

    from localtailr import store

    (home.root / "daemon.json").write_text(json.dumps({"pid": os.getpid(), "started_at": time.time() - 90}))
    data = create_app(home).test_client().get("/api/health").get_json()
    assert data["daemon"]["alive"] and data["daemon"]["uptime"] >= 90  # no heartbeat yet: the process decides
    with store.transaction(root.conn) as conn:
        conn.execute("INSERT INTO tags (name, value) VALUES ('daemon.heartbeat', ?)", (str(time.time() - 300),))
    data = create_app(home).test_client().get("/api/health").get_json()
    assert data["daemon"]["alive"] is False and data["ok"] is False  # a stale heartbeat
    with store.transaction(root.conn) as conn:
        conn.execute("UPDATE tags SET value = ? WHERE name = 'daemon.heartbeat'", (str(time.time()),))
    data = create_app(home).test_client().get("/api/health").get_json()
    assert data["ok"] and data["scheduler"]["alive"] and data["supervisor"]["alive"]


def test_users_and_groups(client, root):
    post_json(client, "/api/user/add", {"name": "alice", "email": "a@example.com"})
    post_json(client, "/api/group/add", {"name": "team"})
    group = post_json(client, "/api/group/add-users", {"name": "team", "users": ["alice"]})
    alice = get_json(client, "/api/user/get?name=alice")
    assert group["members"] == [alice["user_id"]] and alice["groups"] == ["team"]
    assert get_json(client, "/api/user/exists?name=alice") is True
    assert get_json(client, "/api/group/is-member?name=team&user=alice") is True
    assert [u["name"] for u in get_json(client, "/api/user/ls")] == [u["name"] for u in users.ls(root)]
    post_json(client, "/api/user/add", {"name": "alice"}, status=400)  # taken
    post_json(client, "/api/user/rm", {"name": "alice"})
    assert get_json(client, "/api/user/exists?name=alice") is False
    assert get_json(client, "/api/user/get?name=nobody", status=400)["error"] == "user 'nobody' does not exist"


def test_kv_and_secrets_per_environment(client, root):
    post_json(client, "/api/kv/put", {"key": "db", "value": "sqlite://", "environment": "pre"})
    assert get_json(client, "/api/kv/get?key=db&env=pre") == "sqlite://"
    assert kv.get(context(root.home, "root", "pre"), "db") == "sqlite://"  # the same store
    get_json(client, "/api/kv/get?key=db", status=404)  # dev has none
    assert [k["key"] for k in get_json(client, "/api/kv/ls?env=pre")] == ["db"]
    post_json(client, "/api/secret/put", {"key": "token", "value": "s3cr3t-value"})
    listing = client.get("/api/secret/ls").get_data(as_text=True)
    assert "token" in listing and "s3cr3t" not in listing
    assert get_json(client, "/api/secret/get?key=token") == "s3cr3t-value"
    acl = post_json(client, "/api/kv/set-acls", {"key": "db", "environment": "pre", "acl": {"read": [0]}})
    assert acl == {"read": [0]}
    post_json(client, "/api/kv/rm", {"key": "db", "environment": "pre"})
    get_json(client, "/api/kv/get?key=db&env=pre", status=404)
    assert "unknown environment 'qa'" in get_json(client, "/api/kv/ls?env=qa", status=400)["error"]


def test_blobs(client, root):
    resp = client.post("/api/blob/put?name=reports/q1.csv", data=b"a,b\n1,2\n",
                       content_type="application/octet-stream")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    info = resp.get_json()
    assert info["size"] == 8 and len(info["sha256"]) == 64
    got = client.get("/api/blob/get?name=reports/q1.csv")
    assert got.data == b"a,b\n1,2\n" and got.mimetype == "application/octet-stream"
    assert "attachment" in got.headers["Content-Disposition"]
    assert get_json(client, "/api/blob/ls?path=reports")[0]["sha256"] == info["sha256"]
    assert get_json(client, "/api/blob/exists?name=reports/q1.csv") is True
    assert get_json(client, "/api/blob/get-acl?name=reports/q1.csv")["read"] == [0]
    post_json(client, "/api/blob/put", {"name": "notes.txt", "data": "text"})
    assert blob.get(root, "notes.txt") == b"text"
    get_json(client, "/api/blob/get?name=../etc/passwd", status=400)
    post_json(client, "/api/blob/rm", {"name": "reports/q1.csv"})
    get_json(client, "/api/blob/get?name=reports/q1.csv", status=404)


def test_errors_name_the_problem(client):
    assert "no operation kv/nope" in get_json(client, "/api/kv/nope", status=404)["error"]
    assert get_json(client, "/api/kv/put", status=405)["error"] == "kv/put is POST"
    assert client.post("/api/kv/get", json={"key": "a"}).status_code == 405
    assert get_json(client, "/api/kv/get", status=400)["error"] == "missing argument 'key'"
    assert "whole number" in get_json(client, "/api/run/get?run_id=x", status=400)["error"]


def test_the_caller_is_the_servers_user_and_as_needs_an_admin(home, root):
    users.add(root, "alice")
    users.add(root, "bob")
    kv.put(root, "root-only", "x")
    kv.put(context(home, "alice", "dev"), "alices", "y")
    token = security.token(home)
    auth = {"Authorization": f"Bearer {token}"}
    as_root = create_app(home).test_client()
    assert as_root.get("/api/kv/get?key=root-only", headers=auth).get_json() == "x"
    # root (an admin) may act as alice, with the header or ?as=
    r = as_root.get("/api/kv/get?key=root-only", headers={**auth, "X-Localtailr-User": "alice"})
    assert r.status_code == 403 and "user 'alice' lacks READ" in r.get_json()["error"]
    assert as_root.get("/api/kv/get?key=alices&as=alice", headers=auth).get_json() == "y"
    # a server run as alice acts as alice, and alice may not act as anyone else
    as_alice = create_app(home, user="alice").test_client()
    assert as_alice.get("/api/kv/get?key=root-only", headers=auth).status_code == 403
    assert [k["key"] for k in as_alice.get("/api/kv/ls", headers=auth).get_json()] == ["alices"]
    r = as_alice.get("/api/kv/ls?as=root", headers=auth)
    assert r.status_code == 403 and "act as 'root'" in r.get_json()["error"]
    assert as_alice.post("/api/user/add", json={"name": "eve"}, headers=auth).status_code == 403


def test_job_actions_and_runs(client, root, home):
    seed.job(root, "nightly")
    seed.job(root, "api", "service")
    run = post_json(client, "/api/job/start", {"name": "nightly"})
    assert run["state"] == "pending" and run["trigger"] == "manual"
    seed.set_state(root, run["run_id"], "failed", "exit code 1")
    again = post_json(client, "/api/job/rerun", {"run_id": run["run_id"]})
    assert again["trigger"] == "rerun"
    svc = post_json(client, "/api/job/start", {"name": "api"})
    stopped = post_json(client, "/api/job/stop", {"name": "api"})
    assert [r["run_id"] for r in stopped] == [svc["run_id"]]
    assert jobs.get(root, "api")["desired_state"] == "stopped"
    restarted = post_json(client, "/api/job/restart", {"name": "api"})
    assert restarted["trigger"] == "restart"
    listed = get_json(client, "/api/job/runs?name=nightly")
    assert [r["run_id"] for r in listed] == [again["run_id"], run["run_id"]]
    assert get_json(client, f"/api/run/get?run_id={run['run_id']}")["reason"] == "exit code 1"
    assert {j["name"] for j in get_json(client, "/api/job/ls")} == {"nightly", "api"}
    post_json(client, "/api/job/start", {"name": "nope"}, status=404)


def test_rerun_failures_of_a_workflow(client, root):
    seed.job(root, "wf", "workflow", workflow=seed.dag(("a", "b")))
    parent = seed.run(root, "wf", "failed", "task b failed")
    seed.child(root, parent, "a", "succeeded")
    seed.child(root, parent, "b", "failed", "boom")
    new = post_json(client, "/api/job/rerun", {"run_id": parent, "failed_only": True})
    assert new["trigger"] == "rerun" and new["run_id"] != parent
    tasks = jobs.get_run(root, new["run_id"])["tasks"]
    assert [(t["task_name"], t["state"]) for t in tasks][0] == ("a", "succeeded")  # reused


def test_log_tail_follows_with_a_cursor(client, root, home):
    seed.job(root, "printer")
    run_id = seed.run(root, "printer", "running")
    folder = home.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    first = get_json(client, f"/api/log/tail?run_id={run_id}")
    assert first["text"] == "" and first["state"] == "running" and not first["ended"]
    (folder / "stdout").write_text("".join(f"line {i}\n" for i in range(300)))
    first = get_json(client, f"/api/log/tail?run_id={run_id}&cursor={first['cursor']}&lines=5")
    assert first["text"].splitlines() == [f"line {i}" for i in range(295, 300)]
    with open(folder / "stdout", "a") as f:
        f.write("more\n")
    nxt = get_json(client, f"/api/log/tail?run_id={run_id}&cursor={first['cursor']}")
    assert nxt["text"] == "more\n"
    assert get_json(client, f"/api/log/tail?run_id={run_id}&cursor={nxt['cursor']}")["text"] == ""
    (folder / "stderr").write_text("oops\n")
    assert get_json(client, f"/api/log/tail?run_id={run_id}&stream=stderr")["text"] == "oops\n"
    seed.set_state(root, run_id, "succeeded")
    assert get_json(client, f"/api/log/tail?run_id={run_id}&cursor={nxt['cursor']}")["ended"] is True
    assert get_json(client, f"/api/log/read?run_id={run_id}&tail=1")["text"] == "more\n"
    get_json(client, f"/api/log/tail?run_id={run_id}&stream=both", status=400)


def test_a_form_post_goes_back_to_the_page(client, root):
    seed.job(root, "nightly")
    resp = client.post("/api/job/start", data={"name": "nightly", "environment": "dev", "next": "@run"},
                       headers={"Origin": "http://localhost"})
    assert resp.status_code == 303 and re.fullmatch(r"/runs/\d+", resp.headers["Location"])
    resp = client.post("/api/job/start", data={"name": "nightly", "next": "https://evil.example/"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/"


# -- the pages --------------------------------------------------------------------------


def _seed_everything(root):
    users.add(root, "alice")
    kv.put(root, XSS, "<b>bold</b>")
    kv.put(root, "plain", "value-1")
    kv.put(root, "api_token", "s3cr3t-value", kind=kv.SECRETS)
    blob.put(root, "data/x.bin", b"12345")
    seed.job(root, XSS)
    failed = seed.run(root, XSS, "failed", f"exit code 1 {XSS}")
    seed.job(root, "svc", "service")
    running = seed.run(root, "svc", "running", peak_rss=80 * 2**20, peak_cpu=35.0)
    seed.metrics(root, running)
    seed.job(root, "wf", "workflow", workflow=seed.dag(("extract", "transform"), ("transform", "load"),
                                                        ("extract", "audit")))
    parent = seed.run(root, "wf", "failed", "task transform failed")
    children = {
        "extract": seed.child(root, parent, "extract", "succeeded"),
        "transform": seed.child(root, parent, "transform", "failed", "ZeroDivisionError"),
        "load": seed.child(root, parent, "load", "skipped", "upstream transform failed"),
        "audit": seed.child(root, parent, "audit", "succeeded"),
    }
    return {"failed": failed, "running": running, "parent": parent, "children": children}


PAGES = ["/", "/jobs", "/jobs?type=workflow", "/jobs?state=failed&env=dev", "/services", "/users",
         "/kv", "/kv?env=prod", "/secrets", "/blobs"]


def test_every_page_renders_escaped_and_without_secret_values(client, root):
    ids = _seed_everything(root)
    pages = [*PAGES, f"/runs/{ids['failed']}", f"/runs/{ids['running']}", f"/runs/{ids['parent']}",
             "/jobs/dev/script-alert-1-script"]
    for path in pages:
        resp = client.get(path)
        body = resp.get_data(as_text=True)
        assert resp.status_code == 200, (path, body[:500])
        assert "<script>alert" not in body, path
        assert "s3cr3t" not in body, path
        assert '<meta name="viewport"' in body
        assert "http://" not in body.replace("http://www.w3.org/2000/svg", ""), path  # no CDN
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/kv").get_data(as_text=True)
    assert "&lt;b&gt;bold&lt;/b&gt;" in client.get("/kv").get_data(as_text=True)
    assert "api_token" in client.get("/secrets").get_data(as_text=True)
    assert "&lt;script&gt;" in client.get("/jobs/dev/script-alert-1-script").get_data(as_text=True)


def test_overview_shows_what_runs_and_what_failed(client, root):
    ids = _seed_everything(root)
    body = client.get("/").get_data(as_text=True)
    running = body.split('id="running"')[1].split("</table>")[0]
    failures = body.split('id="failures"')[1].split("</table>")[0]
    assert f"/runs/{ids['running']}" in running
    assert f"/runs/{ids['failed']}" in failures and "exit code 1 &lt;script&gt;" in failures
    assert "task transform failed" in failures
    assert "not running" in body  # no daemon


def test_workflow_graph_colours_nodes_and_links_their_runs(client, root):
    ids = _seed_everything(root)
    body = client.get(f"/runs/{ids['parent']}").get_data(as_text=True)
    svg = body.split('<svg class="dag"')[1].split("</svg>")[0]
    for name, state in (("extract", "succeeded"), ("transform", "failed"), ("load", "skipped")):
        assert f'<g class="node state-{state}" data-task="{name}"' in svg
        assert f'href="/runs/{ids["children"][name]}"' in svg
    assert svg.count('class="edge"') == 3


def test_services_page_shows_restarts_uptime_and_charts(client, root):
    ids = _seed_everything(root)
    seed.set_state(root, ids["running"], "failed", "exit code 1")
    with_restart = jobs.restart(root, "svc")
    seed.set_state(root, with_restart["run_id"], "running")
    body = client.get("/services").get_data(as_text=True)
    section = body.split('id="service-dev-svc"')[1].split("</section>")[0]
    assert '<span class="restarts">1</span>' in section
    assert 'class="trigger-restart"' in section and "up " in section
    assert section.count('<svg class="chart"') == 2 and "<polyline" in section


def test_kv_page_shows_only_what_the_caller_may_read(home, root):
    users.add(root, "alice")
    kv.put(root, "root-key", "root-value")
    kv.put(context(home, "alice", "dev"), "alice-key", "alice-value")
    c = create_app(home, user="alice").test_client()
    body = c.get("/kv", headers={"Authorization": f"Bearer {security.token(home)}"}).get_data(as_text=True)
    assert "alice-value" in body and "root-key" not in body and "root-value" not in body


def test_jobs_page_filters_and_pages(client, root):
    for i in range(30):
        seed.job(root, f"job-{i:02d}")
    seed.job(root, "svc", "service")
    seed.run(root, "job-03", "failed", "exit code 2")
    body = client.get("/jobs").get_data(as_text=True)
    assert "page 1 of 2" in body and body.count("<tr><td><a href=\"/jobs/") == 25
    assert client.get("/jobs?page=2").get_data(as_text=True).count("<tr><td><a href=\"/jobs/") == 6
    failed = client.get("/jobs?state=failed").get_data(as_text=True)
    assert "job-03" in failed and "job-04" not in failed
    services = client.get("/jobs?type=service").get_data(as_text=True)
    assert "/jobs/dev/svc" in services and "job-01" not in services
    assert client.get("/jobs?env=pre").get_data(as_text=True).count("No jobs.") == 1
    assert client.get("/jobs?env=nope").status_code == 400
