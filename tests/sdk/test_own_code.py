"""Issue 9: a README-style script that deploys at its top level, with no
``if __name__ == "__main__":`` guard, just works: the job's process imports the script to
find its entrypoint and deploys nothing there. Real scripts, run as a user runs them,
through the real daemon."""

import subprocess
import sys
import textwrap

import pytest

from localtailr import store
from localtailr.core import own_code
from localtailr.platform import jobs, logs
from localtailr.platform.context import context
from localtailr.runtime.daemon import control
from localtailr.runtime.process import bootstrap


@pytest.fixture
def daemon_home(localtailr_home, monkeypatch):
    monkeypatch.setenv("LOCALTAILR_STOP_GRACE", "2")
    yield localtailr_home
    control.stop(localtailr_home.home)


def run_script(path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=300, cwd=path.parent)
    assert done.returncode == 0, done.stderr
    return done


def counts(name: str) -> tuple[int, int]:
    """(versions, top-level runs) of job ``name``."""
    conn = store.connection(context().home)
    [job_id] = conn.execute("SELECT job_id FROM jobs WHERE name = ?", (name,)).fetchone()
    return (conn.execute("SELECT count(*) FROM job_versions WHERE job_id = ?", (job_id,)).fetchone()[0],
            conn.execute("SELECT count(*) FROM runs WHERE job_id = ? AND parent_run_id IS NULL",
                         (job_id,)).fetchone()[0])


@pytest.mark.slow
def test_services_deployed_at_a_scripts_top_level_run_once(daemon_home, tmp_path):
    script = tmp_path / "services.py"
    script.write_text(textwrap.dedent("""\
        import time
        from localtailr import Service

        def serve(name):
            print(name, "serving", flush=True)
            while True:
                time.sleep(0.2)

        def api():
            serve("api")

        def worker():
            serve("worker")

        print("api run:", Service("My API", entrypoint=api, python_version="auto").run())
        Service("Worker", entrypoint=worker, python_version="auto").run()
    """))
    run_script(script)
    for name in ("my-api", "worker"):
        [run] = jobs.runs(context(), name)
        lines = logs.follow(context(), run["run_id"], timeout=120)
        # serving comes after the import, the top-level deploys included
        assert next(line for line in lines if "serving" in line) == {"my-api": "api serving", "worker": "worker serving"}[name]
    out = logs.read(context(), job="my-api")
    assert out.startswith("api run: JobRun(job='my-api', run_id=")  # the existing run
    for name in ("my-api", "worker"):
        assert counts(name) == (1, 1)  # not deployed again by its own process
        assert jobs.get(context(), name)["status"] == "running"


@pytest.mark.slow
def test_a_workflow_called_at_a_scripts_top_level_runs_once(daemon_home, tmp_path):
    script = tmp_path / "nightly.py"
    script.write_text(textwrap.dedent("""\
        from localtailr import task, workflow

        @task()
        def extract(): return [3, 1, 2]

        @task()
        def clean(rows, rundate): return sorted(rows)

        @workflow(name="Nightly", python_version="auto")
        def nightly():
            clean(extract())

        print("local:", nightly(local_run=True))
        run = nightly()
        print("state:", run.wait(timeout=240))
        print("tasks:", sorted(t["state"] for t in run.tasks()))
    """))
    done = run_script(script)
    assert "local: {'extract': [3, 1, 2], 'clean': [1, 2, 3]}" in done.stdout
    assert "state: succeeded" in done.stdout
    assert "tasks: ['succeeded', 'succeeded']" in done.stdout
    assert counts("nightly") == (1, 1)


def test_the_bootstrap_sets_what_own_code_reads(monkeypatch):
    monkeypatch.delenv(own_code.IMPORTING, raising=False)
    monkeypatch.delenv(own_code.DONT_RUN_WORKFLOW, raising=False)
    assert set(bootstrap.IMPORTING_VARS) == {own_code.IMPORTING, own_code.DONT_RUN_WORKFLOW}
    seen = {}
    monkeypatch.setattr(bootstrap, "load_module",
                        lambda entry: seen.update(importing=own_code.importing(),
                                                  held=own_code.workflows_held()))
    bootstrap.load_own_code({})
    assert seen == {"importing": True, "held": True}
    assert not own_code.importing() and not own_code.workflows_held()  # restored after
