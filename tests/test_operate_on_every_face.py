"""Every operation that changes a run is refused to a user without OPERATE, on every face
(Python, command line, HTTP), and the refusal changes nothing."""

from __future__ import annotations

import pytest
from support import jobs_entry
from support import web_seed as seed

from localtailr import BatchJob, PermissionError, Service
from localtailr.platform import jobs, users
from localtailr.platform.context import context
from localtailr.sdk.workflow_run import WorkflowRun
from localtailr.web import security
from localtailr.web.app import create_app


@pytest.fixture
def world(localtailr_home):
    """root's batch job (a pending run), service (running) and workflow (a failed run);
    mallory may read them, nothing more."""
    root = context(localtailr_home.home, "root")
    users.add(root, "mallory")
    READ_ONLY = {"read": [users.get(root, "mallory")["user_id"]]}  # noqa: N806
    batch = jobs.run(root, BatchJob("Nightly", jobs_entry.hello).to_dict(), READ_ONLY)
    jobs.save(root, Service("Api", jobs_entry.serve).to_dict(), READ_ONLY)
    service = jobs.start(root, "Api")
    seed.set_state(root, service["run_id"], "running")
    seed.job(root, "flow", "workflow", workflow=seed.dag(("a", "b")))
    jobs.save(root, jobs.get(root, "flow")["definition"], READ_ONLY)
    flow = seed.run(root, "flow", "failed", "task b failed")
    seed.child(root, flow, "a", "succeeded")
    seed.child(root, flow, "b", "failed", "boom")
    return localtailr_home.home, root, {"batch": batch["run_id"], "service": service["run_id"],
                                        "flow": flow}


def _snapshot(root):
    runs = [tuple(r) for r in root.conn.execute("SELECT * FROM runs ORDER BY run_id")]
    events = root.conn.execute("SELECT count(*) FROM run_events").fetchone()[0]
    desired = [tuple(r) for r in root.conn.execute("SELECT name, desired_state FROM jobs")]
    return runs, events, desired


def test_the_python_face_refuses(world, localtailr_home):
    home, root, ids = world
    before = _snapshot(root)
    localtailr_home.as_user("mallory")
    nightly, api = BatchJob("Nightly", jobs_entry.hello), Service("Api", jobs_entry.serve)
    flow = WorkflowRun(home, ids["flow"], "flow")
    assert flow.state == "failed"  # READ is enough to look
    for action in (nightly.start, nightly.stop, nightly.restart, api.start, api.stop, api.restart,
                   flow.stop, flow.rerun_failed,
                   WorkflowRun(home, ids["batch"], "nightly").stop):
        with pytest.raises(PermissionError):
            action()
    assert _snapshot(root) == before


def test_the_command_line_refuses(world, cli):
    home, root, ids = world
    before = _snapshot(root)
    for args in (["job", "start", "Nightly"], ["job", "run", "Nightly"], ["job", "stop", "Nightly"],
                 ["job", "stop", "Api"], ["job", "restart", "Api"], ["job", "rm", "Nightly"],
                 ["job", "rerun", str(ids["batch"])],
                 ["job", "rerun", str(ids["flow"]), "--failed-only"],
                 ["job", "stop", "flow", "--run", str(ids["flow"])]):
        done = cli(*args, "--as", "mallory")
        assert done.returncode == 1 and "mallory" in done.stderr and "operate" in done.stderr.lower(), (args, done.stderr)
    assert _snapshot(root) == before


def test_http_refuses(world):
    home, root, ids = world
    client = create_app(home, user="mallory").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {security.token(home)}"
    before = _snapshot(root)
    for path, body in (("job/start", {"name": "Nightly"}), ("job/run", {"definition": {**jobs.get(root, "Nightly")["definition"], "run_as": None}}),
                       ("job/stop", {"name": "Nightly"}), ("job/stop", {"name": "Api"}),
                       ("job/restart", {"name": "Api"}), ("job/rm", {"name": "Nightly"}),
                       ("job/rerun", {"run_id": ids["batch"]}),
                       ("job/rerun", {"run_id": ids["flow"], "failed_only": True}),
                       ("job/stop", {"name": "flow", "run_id": ids["flow"]})):
        resp = client.post(f"/api/{path}", json=body)
        assert resp.status_code == 403, (path, resp.get_data(as_text=True))
    assert _snapshot(root) == before
