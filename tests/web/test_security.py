"""Issue 6, security of the web face: Host names, the token and its cookie, cross-site POSTs,
headers, escaping, secrets. Checked with the Flask test client and with a real served instance."""

import http.client
import os
import stat

import pytest
from support import web_seed as seed

from localtailr.platform import kv
from localtailr.platform.context import context
from localtailr.web import security, server
from localtailr.web.app import create_app


@pytest.fixture
def home(localtailr_home):
    return localtailr_home.home


@pytest.fixture
def client(home):
    return create_app(home).test_client()


@pytest.fixture
def served(home):
    srv = server.serve(home)
    server.start_in_thread(srv)
    yield srv
    srv.shutdown()
    srv.server_close()


def raw(srv, method, path, headers=None, body=None):
    """One request over a real socket, with exactly the headers given (Host included)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_port, timeout=30)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def test_token_file_is_created_private_and_kept(home):
    assert not home.token_file.exists()
    create_app(home)
    mode = stat.S_IMODE(os.stat(home.token_file).st_mode)
    assert mode == 0o600
    token = home.token_file.read_text()
    assert len(token) >= 40
    create_app(home)
    assert home.token_file.read_text() == token
    os.chmod(home.token_file, 0o644)
    assert security.token(home) == token
    assert stat.S_IMODE(os.stat(home.token_file).st_mode) == 0o600


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.2:80", "localhost.evil.example",
                                  "10.0.0.1", "[::2]:80", "localhost:80x", ""])
def test_other_host_names_are_refused(client, home, host):
    token = security.token(home)
    for path in ("/api/health", "/", f"/?token={token}", "/static/style.css"):
        resp = client.get(path, headers={"Host": host, "Authorization": f"Bearer {token}"})
        assert resp.status_code == 403, (host, path)


@pytest.mark.parametrize("host", ["localhost", "localhost:5000", "127.0.0.1:1", "[::1]:8888", "LOCALHOST"])
def test_loopback_host_names_are_served(client, home, host):
    resp = client.get("/", headers={"Host": host, "Authorization": f"Bearer {security.token(home)}"})
    assert resp.status_code == 200


def test_real_server_checks_the_host_header(served, home):
    token = security.token(home)
    auth = {"Authorization": f"Bearer {token}"}
    port = served.server_port
    resp, _ = raw(served, "GET", "/api/health", {"Host": f"127.0.0.1:{port}"})
    assert resp.status == 200
    for host in (f"rebind.attacker.example:{port}", "attacker.example"):
        resp, body = raw(served, "GET", "/api/kv/ls", {"Host": host, **auth})
        assert resp.status == 403 and b"localhost" in body
    resp, _ = raw(served, "GET", "/api/kv/ls", {"Host": f"localhost:{port}", **auth})
    assert resp.status == 200
    assert served.server_address[0] == "127.0.0.1"


def test_everything_but_health_and_static_needs_the_token(client):
    assert client.get("/api/health").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    for path in ("/", "/jobs", "/kv", "/runs/1", "/api/kv/ls", "/api/user/ls", "/api/nope/nope"):
        assert client.get(path).status_code == 401, path
    assert client.post("/api/kv/put", json={"key": "a", "value": "b"}).status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/?token=wrong").status_code == 401
    assert "token" in client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)


def test_token_in_the_url_sets_a_strict_cookie_and_is_dropped_from_the_url(served, home):
    token = security.token(home)
    port = served.server_port
    host = {"Host": f"127.0.0.1:{port}"}
    resp, _ = raw(served, "GET", f"/jobs?type=batch&token={token}&page=1", host)
    assert resp.status == 302
    assert resp.getheader("Location") == "/jobs?type=batch&page=1"
    cookie = resp.getheader("Set-Cookie")
    assert cookie.startswith(f"localtailr-token-{port}={token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    resp, body = raw(served, "GET", "/jobs?type=batch", {**host, "Cookie": f"localtailr-token-{port}={token}"})
    assert resp.status == 200 and b"Jobs" in body
    resp, _ = raw(served, "GET", "/jobs", {**host, "Cookie": f"localtailr-token-{port}=wrong"})
    assert resp.status == 401
    resp, _ = raw(served, "GET", "/jobs", {**host, "Cookie": f"localtailr-token-1={token}"})  # another port's
    assert resp.status == 401


def test_cookie_posts_must_come_from_our_origin(served, home, localtailr_home):
    token = security.token(home)
    port = served.server_port
    ours = f"http://127.0.0.1:{port}"
    base = {"Host": f"127.0.0.1:{port}", "Cookie": f"localtailr-token-{port}={token}",
            "Content-Type": "application/json"}
    body = b'{"key": "k", "value": "v"}'
    for extra in ({}, {"Origin": "http://evil.example"}, {"Origin": "null"},
                  {"Origin": f"http://localhost:{port}"}, {"Referer": "http://evil.example/x"}):
        resp, _ = raw(served, "POST", "/api/kv/put", {**base, **extra}, body)
        assert resp.status == 403, extra
    root = context(home, "root", "dev")
    with pytest.raises(KeyError):
        kv.get(root, "k")
    resp, _ = raw(served, "POST", "/api/kv/put", {**base, "Origin": ours}, body)
    assert resp.status == 200
    resp, _ = raw(served, "POST", "/api/kv/put", {**base, "Referer": f"{ours}/kv"}, body)
    assert resp.status == 200
    # a bearer token cannot be sent by another site: no Origin needed
    resp, _ = raw(served, "POST", "/api/kv/put", {"Host": f"127.0.0.1:{port}", "Authorization": f"Bearer {token}",
                                                 "Content-Type": "application/json"}, body)
    assert resp.status == 200
    assert kv.get(root, "k") == "v"


def test_security_headers(client, home):
    resp = client.get("/", headers={"Authorization": f"Bearer {security.token(home)}"})
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"


def test_an_html_blob_is_never_served_as_html(client, home):
    from localtailr.platform import blob

    blob.put(context(home, "root", "dev"), "page.html", b"<script>alert(1)</script>")
    resp = client.get("/api/blob/get?name=page.html", headers={"Authorization": f"Bearer {security.token(home)}"})
    assert resp.mimetype == "application/octet-stream"
    assert resp.headers["Content-Disposition"].startswith("attachment")


def test_user_input_is_escaped_and_secrets_never_rendered(client, home):
    root = context(home, "root", "dev")
    xss = "<script>alert(1)</script>"
    kv.put(root, xss, xss)
    kv.put(root, "token", "TOPSECRETVALUE", kind=kv.SECRETS)
    seed.job(root, xss)
    run = seed.run(root, xss, "failed", xss)
    auth = {"Authorization": f"Bearer {security.token(home)}"}
    for path in ("/", "/jobs", "/kv", "/secrets", f"/runs/{run}", "/jobs/dev/script-alert-1-script",
                 "/api/secret/ls", "/api/kv/ls", "/api/job/runs?all=1"):
        body = client.get(path, headers=auth).get_data(as_text=True)
        assert "TOPSECRETVALUE" not in body, path
        if not path.startswith("/api/"):
            assert "<script>alert" not in body, path
    # an error message that repeats the input is escaped too
    body = client.get(f"/runs/{run}?env={xss}", headers=auth).get_data(as_text=True)
    assert "<script>alert" not in body


def test_localtailr_web_serves_in_the_foreground(cli, home):
    import re
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    exe = Path(sys.executable).with_name("localtailr")
    proc = subprocess.Popen([str(exe), "--home", str(home.root), "web"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line).group(0)
        assert url.endswith(security.token(home))
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url.split("?")[0] + "api/health", timeout=10) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
