"""Jobs deployed through the genuine SDK run for real on localtailr: a workflow's results,
logs, runs, run details and rerun; a service on DATATAILR_SERVICE_PORT; a flask app served
at / and under /job/<env>/<name>/; the code snapshot taken at save."""

from __future__ import annotations

import json
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from support import page_servers

pytestmark = pytest.mark.slow

TASKS = '''
from datatailr import task

@task()
def get_number():
    print("getting the number")
    return 42

@task()
def add(a, b):
    print(f"adding {a} and {b}")
    return a + b

@task(memory="150m", cpu=0.5)
def report(total, rundate=None):
    print("report", total)
    return {"total": total, "rundate": rundate}

@task()
def explode():
    raise RuntimeError("boom")
'''

WAIT_RUN = '''
import json, time
from datatailr import Workflow
wf = Workflow(name=NAME, get_existing=True)
for _ in range(600):
    runs = wf.runs(refresh=True)
    if runs and runs[0]["state"] in ("completed", "failed", "stopped"):
        break
    time.sleep(0.2)
'''


def _project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def _deploy_workflow(sdk, project: Path, body: str, name: str = "My Pipe") -> None:
    lines = ["from datatailr import workflow",
             "from pipe.tasks import get_number, add, report, explode",
             "", f"@workflow(name={name!r})", "def pipe():",
             *("    " + line for line in textwrap.dedent(body).strip().splitlines()),
             "", "if __name__ == '__main__':", "    pipe()"]
    (project / "deploy.py").write_text("\n".join(lines) + "\n")
    out = sdk.run("import runpy; runpy.run_path('deploy.py', run_name='__main__')", cwd=project)
    assert "Error" not in out.stderr, out.stderr


def test_workflow_results_logs_runs_details_and_rerun(sdk, tmp_path, localtailr_home):
    project = _project(tmp_path / "proj", {"pipe/__init__.py": "", "pipe/tasks.py": TASKS})
    _deploy_workflow(sdk, project, """
        n = get_number()
        total = add(n, 8)
        report(total)
    """)
    got = sdk.value(WAIT_RUN.replace("NAME", repr("My Pipe")) + '''
rid = runs[0]["run_id"]
details = wf.run_details(rid)
print(json.dumps({
    "runs": [(r["state"], r["job_version"]) for r in runs],
    "tasks": sorted((t["id"], t["name"], t["state"], t["dependencies"], str(t["resources"]))
                    for t in details["tasks"]),
    "results": [wf.result(rid, task_name="get_number"), wf.result(rid, task_name="add"),
                wf.result(rid, task_name="report")],
    "log": wf.logs(rid, task_name="add"),
    "rid": rid,
}))
''', cwd=project)
    assert got["runs"] == [["completed", 1]]
    assert got["tasks"] == [
        [0, "get_number", "completed", [], "Resources(memory='100m', cpu=1.0, vram=None)"],
        [1, "add", "completed", [0], "Resources(memory='100m', cpu=1.0, vram=None)"],
        [2, "report", "completed", [1], "Resources(memory='150m', cpu=0.5, vram=None)"]]
    assert got["results"][:2] == [42, 50]
    assert got["results"][2]["total"] == 50
    assert got["results"][2]["rundate"] == time.strftime("%Y-%m-%d") or got["results"][2]["rundate"]
    assert "adding 42 and 8" in got["log"]
    # localtailr's own face sees the same job and run
    from localtailr.platform import jobs
    from localtailr.platform.context import context

    job = jobs.get(context(), "my-pipe")
    assert job["type"] == "workflow" and job["status"] == "succeeded"
    run = jobs.get_run(context(), got["rid"])
    assert sorted(t["task_name"] for t in run["tasks"]) == ["add", "get_number", "report"]
    # a full rerun through the SDK runs the same version again
    again = sdk.value(WAIT_RUN.replace("NAME", repr("My Pipe")) + f'''
ok, _ = wf.rerun({got["rid"]}, full=True)
time.sleep(0.5)
for _ in range(600):
    runs = wf.runs(refresh=True)
    if len(runs) == 2 and runs[-1]["state"] in ("completed", "failed"):
        break
    time.sleep(0.2)
print(json.dumps([ok, [r["state"] for r in runs], wf.result(runs[-1]["run_id"], task_name="add")]))
''', cwd=project)
    assert again == [True, ["completed", "completed"], 50]


def test_failed_task_fails_the_run_and_its_dependents_do_not_run(sdk, tmp_path):
    project = _project(tmp_path / "proj", {"pipe/__init__.py": "", "pipe/tasks.py": TASKS})
    _deploy_workflow(sdk, project, """
        e = explode()
        add(e, 1)
    """, name="Broken Pipe")
    got = sdk.value(WAIT_RUN.replace("NAME", repr("Broken Pipe")) + '''
rid = runs[0]["run_id"]
tasks = {t["name"]: t["state"] for t in wf.run_details(rid)["tasks"]}
print(json.dumps([runs[0]["state"], tasks, wf.logs(rid, task_name="explode", stderr=True)]))
''', cwd=project)
    assert got[0] == "failed"
    assert got[1]["explode"] == "failed" and got[1]["add"] in ("did_not_run",)
    assert "boom" in got[2]


def test_code_is_snapshotted_at_save(sdk, tmp_path):
    project = _project(tmp_path / "proj", {"pipe/__init__.py": "", "pipe/tasks.py": TASKS})
    (project / "deploy.py").write_text(textwrap.dedent("""
        from datatailr import workflow
        from pipe.tasks import get_number

        @workflow(name="Snap")
        def snap():
            get_number()

        if __name__ == "__main__":
            snap(save_only=True)
    """))
    sdk.run("import runpy; runpy.run_path('deploy.py', run_name='__main__')", cwd=project)
    (project / "pipe" / "tasks.py").write_text(TASKS.replace("return 42", "return 7"))
    assert sdk.dt("job", "start", "snap", "--environment", "dev", "--now", "--json") \
        .returncode == 0
    got = sdk.value(WAIT_RUN.replace("NAME", repr("Snap")) + '''
print(json.dumps([runs[0]["state"], wf.result(runs[0]["run_id"], task_name="get_number")]))
''', cwd=project)
    assert got == ["completed", 42]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read().decode()


def _wait_url(sdk, name: str) -> str:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = json.loads(sdk.dt("job", "get", name, "--environment", "dev", "--json").stdout)[0]
        if job["state"] == "running":
            from localtailr.platform import jobs
            from localtailr.platform.context import context

            run = jobs.get_run(context(), jobs.get(context(), name)["last_run_id"])
            if run["port"]:
                try:
                    _get(f"http://127.0.0.1:{run['port']}/health")
                    return f"http://127.0.0.1:{run['port']}"
                except OSError:
                    pass
        if job["state"] in ("failed", "stopped"):
            from localtailr.platform import jobs
            from localtailr.platform.context import context

            err = context().home.run_dir(jobs.get(context(), name)["last_run_id"]) / "stderr"
            tail = err.read_text()[-1500:] if err.exists() else ""
            raise AssertionError(f"{name} is {job['state']}; its last stderr:\n{tail}")
        time.sleep(0.2)
    raise AssertionError(f"{name} did not come up")


def test_service_gets_its_port_and_the_platform_environment(sdk, tmp_path, localtailr_home):
    project = _project(tmp_path / "proj", {"svc/__init__.py": "", "svc/server.py": """
        import http.server, json, os

        def serve(port):
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    body = json.dumps({k: os.environ.get(k) for k in (
                        "DATATAILR_JOB_TYPE", "DATATAILR_JOB_NAME", "DATATAILR_SERVICE_PORT",
                        "DATATAILR_JOB_ENVIRONMENT", "GREETING")} | {"port": port}).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
            http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """, "deploy.py": """
        from datatailr import Service
        from svc.server import serve
        print(Service(name="Simple Service", entrypoint=serve, python_version="3.11",
                      env_vars={"GREETING": "hi"}).run()[0])
    """})
    out = sdk.run("import runpy; runpy.run_path('deploy.py', run_name='__main__')", cwd=project)
    assert out.stdout.strip().endswith("True")
    base = _wait_url(sdk, "simple-service")
    env = json.loads(_get(base + "/health")[1])
    assert env["DATATAILR_JOB_TYPE"] == "service" and env["DATATAILR_JOB_NAME"] == "simple-service"
    assert env["DATATAILR_SERVICE_PORT"] == str(env["port"]) and env["GREETING"] == "hi"
    assert env["DATATAILR_JOB_ENVIRONMENT"] == "dev"
    assert sdk.dt("job", "stop", "simple-service", "--environment", "dev").returncode == 0
    assert sdk.dt("job", "rm", "simple-service", "--environment", "dev", "--all").returncode == 0
    assert sdk.dt("job", "get", "simple-service", "--environment", "dev").returncode == 1


def test_flask_app_module_served_at_root_and_under_its_prefix(sdk, tmp_path):
    project = _project(tmp_path / "proj", {"dash_board/__init__.py": "", "dash_board/app.py": """
        import os
        from flask import Flask, request

        app = Flask(__name__)

        @app.route("/")
        def index():
            return f"hello from {os.environ['DATATAILR_JOB_NAME']} at {request.script_root}/"

        @app.route("/health")
        def health():
            return "OK"
    """, "deploy.py": """
        from datatailr import App
        import dash_board.app as board
        print(App(name="Board", entrypoint=board, framework="flask", python_version="3.11",
                  python_requirements=["flask"]).run()[0])
    """})
    out = sdk.run("import runpy; runpy.run_path('deploy.py', run_name='__main__')", cwd=project)
    assert out.stdout.strip().endswith("True"), out.stderr
    base = _wait_url(sdk, "board")
    assert _get(base + "/") == (200, "hello from board at /")
    assert _get(base + "/job/dev/board/") == (200, "hello from board at /job/dev/board/")
    sdk.dt("job", "stop", "board", "--environment", "dev")


def test_streamlit_app_module_answers_at_root_and_under_its_prefix(sdk, tmp_path):
    # issue 11: streamlit runs under its prefix behind the proxy on the app's port (a
    # stand-in ``streamlit`` in the image, which serves only under its base path: the real
    # one is not in the wheelhouse; tests/runtime/process/test_streamlit_real.py)
    stand_in = page_servers.wheel(tmp_path, "streamlit")
    project = _project(tmp_path / "proj", {"page_board/__init__.py": "",
                                           "page_board/app.py": "print('page ran')\n"})
    (project / "deploy.py").write_text(textwrap.dedent(f"""
        from datatailr import App
        import page_board.app as board
        print(App(name="Page Board", entrypoint=board, framework="streamlit",
                  python_version="3.11",
                  python_requirements=["streamlit @ {stand_in.as_uri()}"]).run()[0])
    """))
    out = sdk.run("import runpy; runpy.run_path('deploy.py', run_name='__main__')", cwd=project)
    assert out.stdout.strip().endswith("True"), out.stderr
    base = _wait_url(sdk, "page-board")
    status, root = _get(base + "/")
    assert status == 200 and json.loads(root)["path"] == "/job/dev/page-board/"
    assert json.loads(_get(base + "/job/dev/page-board/x")[1])["path"] == "/job/dev/page-board/x"
    sdk.dt("job", "stop", "page-board", "--environment", "dev")


def test_fastapi_app_module_answers_under_its_prefix(sdk, tmp_path):
    # as the platform's launcher serves it (uvicorn --root-path /job/<env>/<name>): under the
    # prefix the app sees the full path and the prefix as its root_path, so that mounts
    # (StaticFiles, as the SDK demo's fastapi app has) and url_for work there too
    project = _project(tmp_path / "proj", {"api_board/__init__.py": "", "api_board/app.py": """
        from pathlib import Path
        from fastapi import FastAPI, Request
        from fastapi.staticfiles import StaticFiles

        app = FastAPI()
        app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")),
                  name="static")

        @app.get("/health")
        def health():
            return "OK"

        @app.get("/where")
        def where(request: Request):
            return {"root_path": request.scope.get("root_path", ""),
                    "path": request.scope["path"],
                    "css": str(request.url_for("static", path="style.css").path)}
    """, "api_board/static/style.css": "body { color: teal }\n", "deploy.py": """
        from datatailr import App
        import api_board.app as board
        print(App(name="Api Board", entrypoint=board, framework="fastapi", python_version="3.11",
                  python_requirements=["fastapi", "uvicorn"]).run()[0])
    """})
    out = sdk.run("import runpy; runpy.run_path('deploy.py', run_name='__main__')", cwd=project)
    assert out.stdout.strip().endswith("True"), out.stderr
    base = _wait_url(sdk, "api-board")
    assert json.loads(_get(base + "/where")[1]) == {
        "root_path": "", "path": "/where", "css": "/static/style.css"}
    assert json.loads(_get(base + "/job/dev/api-board/where")[1]) == {
        "root_path": "/job/dev/api-board", "path": "/job/dev/api-board/where",
        "css": "/job/dev/api-board/static/style.css"}
    for url in (base + "/static/style.css", base + "/job/dev/api-board/static/style.css"):
        assert _get(url) == (200, "body { color: teal }\n")
    sdk.dt("job", "stop", "api-board", "--environment", "dev")


FLAKY = '''
from datatailr import KV, task

@task()
def base():
    return 20

@task()
def flaky(x):
    if KV().get("mode") != "fixed":
        raise RuntimeError("not yet")
    return x + 1
'''


def test_rerun_of_failures_reuses_what_succeeded(sdk, tmp_path):
    project = _project(tmp_path / "proj", {"pipe/__init__.py": "", "pipe/tasks.py": FLAKY,
                                           "deploy.py": """
        from datatailr import workflow
        from pipe.tasks import base, flaky

        @workflow(name="Flaky")
        def pipe():
            flaky(base())

        if __name__ == "__main__":
            pipe()
    """})
    sdk.dt("kv", "put", "mode", "broken")
    sdk.run("import runpy; runpy.run_path('deploy.py', run_name='__main__')", cwd=project)
    first = sdk.value(WAIT_RUN.replace("NAME", repr("Flaky")) + '''
print(json.dumps([runs[0]["state"], runs[0]["run_id"]]))
''', cwd=project)
    assert first[0] == "failed"
    sdk.dt("kv", "put", "mode", "fixed")
    got = sdk.value(WAIT_RUN.replace("NAME", repr("Flaky")) + f'''
ok, _ = wf.rerun({first[1]})
for _ in range(600):
    runs = wf.runs(refresh=True)
    if len(runs) == 2 and runs[-1]["state"] in ("completed", "failed"):
        break
    time.sleep(0.2)
tasks = {{t["name"]: t["state"] for t in wf.run_details(runs[-1]["run_id"])["tasks"]}}
# a partial rerun keeps its results in the original run's namespace, as on the platform
print(json.dumps([ok, runs[-1]["state"], tasks, wf.result({first[1]}, task_name="flaky")]))
''', cwd=project)
    assert got[:3] == [True, "completed", {"base": "completed", "flaky": "completed"}]
    assert got[3] == 21


def test_scheduled_workflow_versions_and_promote(sdk, tmp_path, localtailr_home):
    project = _project(tmp_path / "proj", {"pipe/__init__.py": "", "pipe/tasks.py": TASKS,
                                           "deploy.py": """
        from datatailr import workflow
        from datatailr.scheduler import Schedule
        from pipe.tasks import get_number

        @workflow(name="Nightly", schedule=Schedule(at_hours=[2], at_minutes=[30]))
        def nightly():
            get_number()

        if __name__ == "__main__":
            nightly()
            nightly()
    """})
    sdk.run("import runpy; runpy.run_path('deploy.py', run_name='__main__')", cwd=project)
    from localtailr.platform import jobs
    from localtailr.platform.context import context

    job = jobs.get(context(), "nightly")
    assert job["schedule"]["cron"] == "0 30 2 * * *" and job["next_fire"] is not None
    assert job["last_run_id"] is None  # scheduled, not started
    got = sdk.value("""
        import json
        from datatailr import Workflow
        wf = Workflow(name="Nightly", get_existing=True)
        ok, _ = wf.promote("dev", 2)
        print(json.dumps([[v["version"] for v in wf.versions()], ok]))
    """)
    assert got == [[1, 2], True]
    localtailr_home.use_environment("pre")
    assert jobs.get(context(), "nightly")["definition"]["promoted_from"] == {
        "environment": "dev", "version": 2}
