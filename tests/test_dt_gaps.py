"""Gaps of the dt face closed: each workflow task is held to its own memory and CPU."""

from __future__ import annotations

import textwrap

import pytest

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
