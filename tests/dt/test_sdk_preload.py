"""Tasks deployed through the genuine SDK fork warm: an image's task fork server imports the
SDK's batch runner when the image has ``datatailr``, and each forked task then redoes what the
SDK read from the environment at import (its ``dt``, the environment of its argument and
result blobs, the job name of its log lines)."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from support.dt_support import DT

from localtailr.platform import jobs
from localtailr.platform.context import context
from localtailr.runtime.process import forkserver

ROOT = Path(__file__).resolve().parents[2]

TASKS = '''
import os
from datatailr import task


@task()
def probe():
    import datatailr.logging
    from datatailr.scheduler import arguments_cache
    from datatailr.wrapper import resolve_cli_command_prefix
    return {"env": os.environ["DATATAILR_JOB_ENVIRONMENT"],
            "job": os.environ["DATATAILR_JOB_NAME"],
            "blob_env": arguments_cache.__ENV__,
            "log_job": datatailr.logging.job_name,
            "dt": resolve_cli_command_prefix()}
'''

# a chain of four (the first task is spawned while the image's fork server loads), saved in
# dev and promoted to pre: the fork server, started with no DATATAILR_* variable, imports
# the SDK as in "dev"
DEPLOY = '''
from datatailr import Workflow, workflow
from warm.tasks import probe

@workflow(name="Warm Chain")
def chain():
    a, b, c, d = probe(), probe(), probe(), probe()
    a >> b >> c >> d

chain(save_only=True)
assert Workflow(name="Warm Chain", get_existing=True).promote("dev", 1)[0]
'''

WAIT = '''
import json, time
from datatailr import Workflow
wf = Workflow(name="Warm Chain", environment="pre", get_existing=True)
for _ in range(600):
    runs = wf.runs(refresh=True)
    if runs and runs[0]["state"] in ("completed", "failed", "stopped"):
        break
    time.sleep(0.2)
rid = runs[0]["run_id"]
tasks = sorted(t["id"] for t in wf.run_details(rid)["tasks"])
print(json.dumps([runs[0]["state"], rid, [wf.result(rid, task_id=t) for t in tasks]]))
'''


def test_preload_imports_the_sdk_runner_where_the_image_has_it(sdk):
    code = textwrap.dedent(f"""
        import sys
        sys.path += [{str(ROOT)!r}, {sysconfig.get_paths()["purelib"]!r}]  # as an image's
        sys.path.insert(0, {str(Path(forkserver.__file__).parent)!r})
        import forkserver
        forkserver.preload(sys.argv[1])
        print(sorted(m for m in forkserver.SDK_TASK_MODULES if m in sys.modules))
    """)
    env = sdk.env()
    for kind, expected in (("task", sorted(forkserver.SDK_TASK_MODULES)), ("batch", [])):
        out = subprocess.run([sdk.python, "-c", code, kind], capture_output=True, text=True,
                             env=env, timeout=120, check=True)
        assert out.stdout.strip() == repr(expected), out.stderr
    # an interpreter without the SDK (localtailr's) preloads the rest, quietly
    out = subprocess.run([sys.executable, "-c", code, "task"], capture_output=True,
                         text=True, env=env, timeout=120, check=True)
    assert out.stdout.strip() == "[]" and "cannot preload" not in out.stderr


@pytest.mark.slow
def test_forked_tasks_see_their_own_environment(sdk, tmp_path):
    project = tmp_path / "proj"
    (project / "warm").mkdir(parents=True)
    (project / "warm" / "__init__.py").write_text("")
    (project / "warm" / "tasks.py").write_text(TASKS)
    sdk.run(DEPLOY, cwd=project)
    started = sdk.dt("job", "start", "warm-chain", "--environment", "pre", "--now", "--json")
    assert started.returncode == 0, started.stderr
    out = sdk.run(WAIT, cwd=project, DATATAILR_JOB_ENVIRONMENT="pre").stdout
    state, rid, seen = json.loads(out.strip().splitlines()[-1])
    assert state == "completed"
    run = jobs.get_run(context(), rid)
    forked = [t for t in run["tasks"]
              if any("forked by fork server" in (e.get("detail") or "")
                     for e in jobs.get_run(context(), t["run_id"])["events"])]
    assert forked, "no task was forked: the test shows nothing"
    assert len(seen) == 4
    for number, found in enumerate(seen):
        assert found["env"] == found["blob_env"] == "pre"
        assert found["job"] == found["log_job"] == f"warm-chain-{number}"
        assert found["dt"] == [str(DT.resolve())]  # the dt on the task's PATH
