"""Apps and Excel add-ins: real flask and fastapi servers on free ports, real HTTP."""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request

import pytest
from support import page_servers, runtime_support
from support.runtime_support import read, submit, wait_state

from localtailr.platform import jobs
from localtailr.platform.context import context

daemon = runtime_support.daemon  # the fixture: a real daemon for the test's home


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _post(url: str, payload) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_flask_app_returned_by_the_entrypoint(localtailr_home, daemon):
    home = localtailr_home.home
    run = submit(home, "Flask Demo", "flask_app", type="app", framework="flask")
    r = wait_state(home, run["run_id"], "running")
    assert r["url"] == f"http://127.0.0.1:{r['port']}/"
    assert _get(r["url"]) == {"hello": "flask-demo"}


def test_flask_app_that_calls_run_itself_is_moved_to_port(localtailr_home, daemon):
    home = localtailr_home.home
    run = submit(home, "flask-run", "flask_app_run", type="app", framework="flask")
    r = wait_state(home, run["run_id"], "running")
    assert _get(r["url"]) == {"hello": "flask-run"}


def _module(tmp_path, name: str, source: str) -> dict:
    (tmp_path / f"{name}.py").write_text(source)
    return {"module": name, "qualname": "make", "sys_path": str(tmp_path),
            "file": str(tmp_path / f"{name}.py"), "kind": "module"}


def test_framework_is_inferred_from_the_source(localtailr_home, daemon, tmp_path):

    home = localtailr_home.home
    ctx = context(home)
    flask_src = "from flask import Flask\n\ndef make():\n    app = Flask('x')\n" \
                "    app.get('/')(lambda: {'inferred': True})\n    return app\n"
    run = jobs.run(ctx, {"name": "inferred", "type": "app", "image": {"python_version": "auto"},
                         "entrypoint": _module(tmp_path, "inferred_app", flask_src)})
    r = wait_state(home, run["run_id"], ("running", "failed"))
    assert r["state"] == "running", r["reason"]
    assert _get(r["url"]) == {"inferred": True}
    plain = jobs.run(ctx, {"name": "plain", "type": "app", "image": {"python_version": "auto"},
                           "entrypoint": _module(tmp_path, "plain_app", "def make():\n    pass\n")})
    done = wait_state(home, plain["run_id"])
    assert done["state"] == "failed" and "framework" in done["reason"]


@pytest.mark.slow
def test_fastapi_app_served_by_uvicorn(localtailr_home, daemon):
    wheelhouse = os.environ.get("LOCALTAILR_WHEELHOUSE") or str(runtime_support.TESTS.parent / "wheelhouse")
    if not any(n.startswith("fastapi") for n in os.listdir(wheelhouse)) if os.path.isdir(wheelhouse) else True:
        pytest.skip("no fastapi wheel in the wheelhouse")
    home = localtailr_home.home
    run = submit(home, "api", "fastapi_app", type="app", framework="fastapi",
                 image={"python_version": "auto", "python_requirements": "fastapi,uvicorn"})
    r = wait_state(home, run["run_id"], ("running", "failed"), timeout=240)
    assert r["state"] == "running", (r["reason"], read(home, run["run_id"], "stderr")[-2000:])
    assert _get(r["url"]) == {"framework": "fastapi"}


def test_excel_addin_functions_over_http(localtailr_home, daemon):
    home = localtailr_home.home
    run = submit(home, "Options Pricer", "price", type="excel")
    r = wait_state(home, run["run_id"], "running")
    base = r["url"].rstrip("/")
    assert _post(f"{base}/call/price", [110, 100]) == (200, {"result": 10.0})
    assert _post(f"{base}/call/price", {"spot": 90, "strike": 100}) == (200, {"result": 0.0})
    assert _post(f"{base}/call/helper_sum", {"args": [2, 3]}) == (200, {"result": 5})
    status, err = _post(f"{base}/call/boom", [1])
    assert status == 500 and err == {"error": "cannot price 1", "type": "ValueError"}
    status, err = _post(f"{base}/call/price", [1])
    assert status == 400 and err["type"] == "TypeError"
    status, err = _post(f"{base}/call/_private", [])
    assert status == 404 and "price" in err["error"]
    names = [f["name"] for f in _get(f"{base}/functions")["functions"]]
    assert "price" in names and "_private" not in names


def test_port_already_taken_ends_in_a_recorded_state(localtailr_home, daemon):
    home = localtailr_home.home
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        run = submit(home, "taker", "take_port", env_vars={"TAKEN_PORT": str(port)})
        done = wait_state(home, run["run_id"])
        assert done["state"] == "failed" and "Address already in use" in done["reason"]
    finally:
        holder.close()


def test_app_that_exits_before_answering_fails(localtailr_home, daemon):
    home = localtailr_home.home
    run = submit(home, "quitter", "exit_at_once", type="app", framework="flask")
    done = wait_state(home, run["run_id"])
    assert done["state"] == "failed"
    assert done["reason"].startswith(f"exited before answering on port {done['port']}")


def test_a_streamlit_app_answers_at_the_root_and_under_its_prefix(localtailr_home, daemon,
                                                                   tmp_path):
    """Issue 11: the daemon's launch gives the app its ``/job/<env>/<name>/`` prefix (a
    stand-in ``streamlit`` beside the app, serving only under its base path)."""
    page_servers.install(tmp_path, "streamlit")
    entry = _module(tmp_path, "page_app", "def make():\n    print('page ran')\n")
    run = jobs.run(context(localtailr_home.home),
                   {"name": "page", "type": "app", "framework": "streamlit",
                    "image": {"python_version": "auto"}, "entrypoint": entry})
    r = wait_state(localtailr_home.home, run["run_id"], ("running", "failed"))
    assert r["state"] == "running", r["reason"]
    prefix = f"/job/{r['environment']}/page/"
    assert _get(r["url"])["path"] == prefix
    assert _get(f"{r['url'].rstrip('/')}{prefix}x")["path"] == f"{prefix}x"
