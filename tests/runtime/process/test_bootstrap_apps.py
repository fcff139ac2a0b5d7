"""The command lines that start streamlit, panel and dash apps, checked without installing
them: stand-in packages on PYTHONPATH record how the bootstrap started them (the real
bootstrap, run by path in a real process); stand-ins that serve HTTP under their base path
show a page app answering at ``/`` and under its prefix through the proxy (issue 11)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request

import pytest
from support import page_servers
from support.runtime_support import wait_for

from localtailr.runtime.process import launch

RECORDER = textwrap.dedent("""
    import json, os, runpy, sys
    with open(os.environ["ARGV_OUT"], "w") as f:
        json.dump(sys.argv[1:], f)
    runpy.run_path(sys.argv[2], run_name="__main__")  # the script the app server would run
""")

DASH = textwrap.dedent("""
    import json, os

    class Dash:
        def run(self, host=None, port=None, debug=None, **kwargs):
            with open(os.environ["ARGV_OUT"], "w") as f:
                json.dump({"host": host, "port": port, "debug": debug}, f)
            os._exit(0)  # a real server serves until it is stopped
""")

APP_MODULE = textwrap.dedent("""
    import os

    def mark(text):
        with open(os.environ["CALLED"], "a") as f:
            f.write(text + "\\n")

    def st_main():
        mark("streamlit entrypoint called")

    class _View:
        def servable(self):
            mark("made servable")

    def pn_main():
        mark("panel entrypoint called")
        return _View()

    def dash_main():
        import dash
        return dash.Dash()

    def dash_runs_itself():
        import dash
        app = dash.Dash()
        app.run("0.0.0.0", 8050, debug=True)  # the bootstrap forces 127.0.0.1:PORT
""")


def _launch(tmp_path, framework: str, entry: dict, port: int = 8765) -> tuple[dict, str]:
    fakes = tmp_path / "fakes"
    for pkg in ("streamlit", "panel"):
        (fakes / pkg).mkdir(parents=True, exist_ok=True)
        (fakes / pkg / "__init__.py").write_text("")
        (fakes / pkg / "__main__.py").write_text(RECORDER)
    (fakes / "dash.py").write_text(DASH)
    (tmp_path / "my_app.py").write_text(APP_MODULE)
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "launch.json").write_text(json.dumps({
        "run_id": 1, "type": "app", "framework": framework, "port": port, "entrypoint": entry}))
    env = {**os.environ, "PYTHONPATH": str(fakes), "ARGV_OUT": str(tmp_path / "argv.json"),
           "CALLED": str(tmp_path / "called")}
    out = subprocess.run([sys.executable, launch.BOOTSTRAP, str(run_dir)], cwd=run_dir,
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    called = (tmp_path / "called").read_text() if (tmp_path / "called").exists() else ""
    return json.loads((tmp_path / "argv.json").read_text()), called


def _entry(tmp_path, qualname: str | None, kind: str = "module") -> dict:
    return {"module": "my_app", "qualname": qualname, "sys_path": str(tmp_path),
            "file": str(tmp_path / "my_app.py"), "kind": kind}


def test_streamlit_function_runs_through_a_wrapper_script(tmp_path):
    argv, called = _launch(tmp_path, "streamlit", _entry(tmp_path, "st_main"))
    assert argv == ["run", str(tmp_path / "run" / "app_main.py"), "--server.port", "8765",
                    "--server.address", "127.0.0.1", "--server.headless", "true",
                    "--browser.gatherUsageStats", "false"]
    assert called == "streamlit entrypoint called\n"


def test_streamlit_script_is_served_as_it_is(tmp_path):
    argv, called = _launch(tmp_path, "streamlit", _entry(tmp_path, None, kind="script"))
    assert argv[:2] == ["run", str(tmp_path / "my_app.py")]
    assert argv[2:] == ["--server.port", "8765", "--server.address", "127.0.0.1",
                        "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    assert called == ""  # the script only defines functions


def test_panel_serves_what_the_entrypoint_returns(tmp_path):
    argv, called = _launch(tmp_path, "panel", _entry(tmp_path, "pn_main"), port=9001)
    assert argv == ["serve", str(tmp_path / "run" / "app_main.py"), "--port", "9001",
                    "--address", "127.0.0.1",
                    "--allow-websocket-origin", "127.0.0.1:9001",
                    "--allow-websocket-origin", "localhost:9001"]
    assert called == "panel entrypoint called\nmade servable\n"


def test_dash_app_returned_is_served_on_loopback_and_the_port(tmp_path):
    kwargs, _ = _launch(tmp_path, "dash", _entry(tmp_path, "dash_main"), port=9002)
    assert kwargs == {"host": "127.0.0.1", "port": 9002, "debug": False}


def test_dash_app_run_by_the_entrypoint_is_held_to_loopback_and_the_port(tmp_path):
    kwargs, _ = _launch(tmp_path, "dash", _entry(tmp_path, "dash_runs_itself"), port=9003)
    assert kwargs == {"host": "127.0.0.1", "port": 9003, "debug": True}


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("framework, qualname, option, base", [
    ("streamlit", "st_main", "--server.baseUrlPath", "job/dev/my-app"),
    ("panel", "pn_main", "--prefix", "/job/dev/my-app"),
])
def test_a_page_app_answers_at_the_root_and_under_its_prefix(tmp_path, framework, qualname,
                                                              option, base):
    servers = tmp_path / "servers"
    page_servers.install(servers, framework)
    (tmp_path / "my_app.py").write_text(APP_MODULE)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    port = launch.free_port()
    (run_dir / "launch.json").write_text(json.dumps({
        "run_id": 1, "type": "app", "framework": framework, "port": port,
        "prefix": "/job/dev/my-app/", "entrypoint": _entry(tmp_path, qualname)}))
    env = {**os.environ, "PYTHONPATH": str(servers), "CALLED": str(tmp_path / "called")}
    proc = subprocess.Popen([sys.executable, launch.BOOTSTRAP, str(run_dir)], cwd=run_dir,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: proc.poll() is not None or launch.port_answers(port), 60, "the port")
        assert proc.poll() is None, proc.communicate()
        status, root = _get(f"http://127.0.0.1:{port}/")
        assert (status, root["path"]) == (200, "/job/dev/my-app/")
        argv = root["argv"]
        assert argv[argv.index(option) + 1] == base
        internal = argv[argv.index("--server.port" if framework == "streamlit" else "--port") + 1]
        assert int(internal) != port  # the framework is behind the proxy
        assert _get(f"http://127.0.0.1:{port}/x?y=1")[1]["path"] == "/job/dev/my-app/x?y=1"
        assert _get(f"http://127.0.0.1:{port}/job/dev/my-app/x")[1]["path"] == "/job/dev/my-app/x"
        assert _get(f"http://127.0.0.1:{internal}/x")[0] == 404  # the framework alone: prefix only
        try:
            _get(f"http://127.0.0.1:{port}/quit")
        except OSError:
            pass  # the process may end before the proxy has passed the answer on
        assert proc.wait(timeout=60) == 0  # the server ended: the proxy does not hold the exit
        assert (run_dir / "exit").read_text() == "0"
    finally:
        proc.kill()
        proc.communicate()
