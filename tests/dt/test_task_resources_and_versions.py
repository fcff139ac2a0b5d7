"""Gaps of the dt face closed: each workflow task is held to its own memory and CPU;
`dt job start --version N` starts an older saved version."""

from __future__ import annotations

import json
import textwrap

import pytest
from support import jobs_entry

from localtailr import BatchJob
from localtailr.platform import jobs
from localtailr.platform.context import context

pytestmark = pytest.mark.slow

HOGS = '''
import time
from datatailr import task, workflow

@task(memory="400m", cpu=1)
def roomy():
    data = b"x" * (120 * 2**20)
    time.sleep(1.5)
    return len(data)

@task(memory="64m", cpu=1)
def cramped():
    data = b"x" * (120 * 2**20)
    time.sleep(1.5)
    return len(data)

@workflow(name="Hogs")
def hogs():
    roomy()
    cramped()

if __name__ == "__main__":
    hogs()
'''


def _wait_run(job: str, timeout: float = 180) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = jobs.runs(context(), job)
        if runs and runs[0]["state"] in ("succeeded", "failed", "killed"):
            return jobs.get_run(context(), runs[0]["run_id"])
        time.sleep(0.2)
    raise AssertionError(f"{job} did not finish")


def test_each_task_is_held_to_its_own_memory_limit(sdk, tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "hogs.py").write_text(textwrap.dedent(HOGS))
    sdk.run("import runpy; runpy.run_path('hogs.py', run_name='__main__')", cwd=project)
    run = _wait_run("hogs")
    tasks = {t["task_name"]: t for t in run["tasks"]}
    assert tasks["roomy"]["state"] == "succeeded"
    assert tasks["cramped"]["state"] == "killed"
    assert tasks["cramped"]["reason"].startswith("killed: memory limit 64m exceeded")


def test_job_start_version_runs_an_older_version_once(sdk):
    job = BatchJob("Nightly", jobs_entry.hello, env_vars={"X": "a"})
    job.save()
    job.env_vars = {"X": "b"}
    job.save()
    bad = sdk.dt("job", "start", "nightly", "--version", "7", "--now", "--json")
    assert bad.returncode != 0 and b"has no version 7; it has 1, 2" in bad.stderr
    two = sdk.dt("job", "start", "nightly", "nightly", "--version", "1", "--now")
    assert two.returncode != 0 and b"--version takes exactly one job" in two.stderr
    assert jobs.runs(context(), "nightly") == []
    out = sdk.dt("job", "start", "nightly", "--environment", "dev", "--now", "--version", "1",
                 "--json")
    assert out.returncode == 0, out.stderr
    run = jobs.wait(context(), json.loads(out.stdout)["run_id"], timeout=120)
    assert (run["version"], run["state"]) == (1, "succeeded")
    assert jobs.get(context(), "nightly")["version"] == 2  # the current version is unchanged
    latest = sdk.dt("job", "start", "nightly", "--version", "2", "--json")
    run = jobs.wait(context(), json.loads(latest.stdout)["run_id"], timeout=120)
    assert run["version"] == 2
