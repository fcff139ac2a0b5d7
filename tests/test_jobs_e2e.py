"""Issue 4, end to end with the real daemon: ``Service(...).run()`` reaches "running",
its output is readable and followable, ``stop()`` ends it; a batch job's run is waited for."""

import pytest
from support import jobs_entry

from localtailr import BatchJob, Environment, Service
from localtailr.platform import jobs, logs
from localtailr.platform.context import context
from localtailr.runtime.daemon import control


@pytest.fixture
def daemon_home(localtailr_home, monkeypatch):
    monkeypatch.setenv("LOCALTAILR_STOP_GRACE", "2")
    yield localtailr_home
    control.stop(localtailr_home.home)


def wait_status(svc, status, timeout=120):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if svc.status == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{svc.name} is {svc.status}, not {status}: {svc.runs(limit=1)}")


def test_service_runs_logs_and_stops(daemon_home):
    svc = Service("Simple Service - alice", jobs_entry.serve, python_version="auto")
    run = svc.run()  # starts the daemon on demand
    assert control.running_info(daemon_home.home) is not None
    wait_status(svc, "running")
    lines = logs.follow(context(), run["run_id"], timeout=120)
    assert next(lines) == "service up simple-service-alice"
    assert "service up" in svc.logs(tail=1)
    [stopping] = svc.stop()
    done = jobs.wait(context(), stopping["run_id"], timeout=120)
    assert done["state"] == "killed" and done["reason"] == "stopped by root"
    assert svc.status == "stopped"
    assert list(lines) == []  # following ends with the run


def test_batch_job_in_prod_sees_its_environment(daemon_home):
    job = BatchJob("Env Probe", jobs_entry.show_environment, environment=Environment.PROD,
                   python_version="auto")
    run = job.run(rundate="2024-02-03")
    done = job.wait(timeout=120)
    assert done["run_id"] == run["run_id"]
    assert done["state"] == "succeeded", job.logs(stderr=True)
    assert job.logs().splitlines() == ["prod env-probe 2024-02-03"]
