"""Every example runs, in its own fresh home, and says what its README promises."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(localtailr_home, script, *args, timeout=300):
    env = {**os.environ, "LOCALTAILR_HOME": str(localtailr_home.root)}
    env.pop("LOCALTAILR_USER", None)
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, env=env, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_every_example_has_a_readme():
    folders = [p for p in EXAMPLES.iterdir() if p.is_dir()]
    assert len(folders) >= 3
    for folder in folders:
        assert (folder / "README.md").is_file(), folder


def test_kv_and_acls(localtailr_home):
    out = run_example(localtailr_home, "01-kv-and-acls/tour.py")
    assert "alice reads: postgresql://warehouse/analytics" in out
    assert "alice may not write: user 'alice' lacks WRITE permission" in out
    assert "bob may not read: user 'bob' lacks READ permission" in out
    assert "bob sees these keys: []" in out


def test_secrets_and_rotation(localtailr_home):
    out = run_example(localtailr_home, "02-secrets-and-key-rotation/rotate.py")
    assert "still readable: correct horse battery staple" in out
    assert "re-encrypted 1 secret(s)" in out


@pytest.mark.slow
def test_blobs_large_files(localtailr_home):
    out = run_example(localtailr_home, "03-blobs-large-files/large.py", "64")
    assert "stored 64 MiB" in out
    assert "refused: invalid blob name '../../etc/passwd'" in out
    grew = int(out.split("peak memory grew by ")[1].split(" MiB")[0])
    assert grew < 100


@pytest.fixture
def daemon_stopped(localtailr_home):
    yield
    from localtailr.runtime.daemon import control

    control.stop(localtailr_home.home)


@pytest.mark.slow
def test_workflow_dag_fails_then_reruns_failures(localtailr_home, daemon_stopped):
    out = run_example(localtailr_home, "04-workflow-dag/pipeline.py")
    assert "first run: failed" in out
    assert "publish   skipped    upstream check failed" in out
    assert "rerun of failures: succeeded" in out
    assert "clean_eu  succeeded  reused from run" in out
    assert "publish said: published 6 rows for" in out
    local = run_example(localtailr_home, "04-workflow-dag/pipeline.py", "--local")
    assert "'publish': 'published 6 rows for" in local


@pytest.mark.slow
def test_service_is_restarted(localtailr_home, daemon_stopped):
    out = run_example(localtailr_home, "05-service-restart/ticker.py")
    assert out.count("restart ") >= 2
    assert "exit code 1: run 1: crashing on purpose" in out
    assert "after stop: stopped" in out


@pytest.mark.slow
def test_flask_app_memory_limit(localtailr_home, daemon_stopped):
    out = run_example(localtailr_home, "06-flask-app-limits/app.py")
    assert "GET / -> hello from a supervised Flask app" in out
    assert "killed - killed: memory limit 200m exceeded (peak" in out


@pytest.mark.slow
def test_which_run_wrote_this(localtailr_home, daemon_stopped):
    out = run_example(localtailr_home, "07-which-run-wrote-this/lineage.py")
    assert "monday's report: run #1 succeeded -> average price over 3 days: 101.00" in out
    assert "tuesday's report" in out and "3434.00" in out
    lines = out.splitlines()
    back = lines[lines.index("lineage of prices/report.txt@2:") + 1:][:3]
    assert "(task report) read blob/prices/clean.csv@2" in back[0]
    assert "(task clean) read blob/prices/raw.csv@2" in back[1]
    assert back[2] == "  prices/raw.csv@2 was put by root, not by a run"
    assert "-tue,101\n+tue,10100" in out
    assert "restored prices/raw.csv version 1 as version 3" in out
    assert "report after the restore" in out and out.count("average price over 3 days: 101.00") >= 3
    assert "version 3: written by run #" in out
