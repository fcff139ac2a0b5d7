"""``dt job rm`` as the platform does it: without ``--all`` one version (``--version N``,
default the latest), with ``--all`` the job; a run of what goes is stopped first. Through
the genuine SDK (``Job.remove(all_versions=False)``) and through argv, bad input too."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from support import jobs_entry

from localtailr import BatchJob, Service
from localtailr.core.errors import NotFoundError
from localtailr.platform import jobs
from localtailr.platform.context import context

pytestmark = pytest.mark.slow

REMOVE = """
import json
from datatailr import Workflow
print(json.dumps(Workflow(name="Nightly").remove(all_versions={all})))
"""


def _snapshot(home) -> list:
    conn = sqlite3.connect(home / "state.db")
    try:
        return [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("jobs", "job_versions", "runs", "acl")]
    finally:
        conn.close()


def _one_line_failure(proc) -> str:
    assert proc.returncode == 1, proc.stdout
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _versions(name="nightly"):
    return [v["version"] for v in jobs.versions(context(), name)]


@pytest.fixture
def nightly(sdk):
    for x in "abc":
        BatchJob("Nightly", jobs_entry.hello, env_vars={"X": x}).save()
    return sdk


def test_the_sdk_removes_the_latest_version_or_all_of_them(nightly):
    ok, _ = nightly.value(REMOVE.format(all=False))
    assert ok is True
    assert _versions() == [1, 2] and jobs.get(context(), "nightly")["version"] == 2
    ok, _ = nightly.value(REMOVE.format(all=True))
    assert ok is True
    with pytest.raises(NotFoundError):
        jobs.get(context(), "nightly")


def test_dt_job_rm_version_keeps_the_others(nightly):
    out = nightly.dt("job", "rm", "nightly", "--environment", "dev", "--version", "2")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"name": "nightly", "removed": 2, "version": 3}
    assert _versions() == [1, 3]
    assert nightly.dt("job", "rm", "nightly").returncode == 0  # the latest: 3
    assert _versions() == [1] and jobs.get(context(), "nightly")["version"] == 1
    assert nightly.dt("job", "rm", "nightly").returncode == 0  # the last: the job goes
    assert nightly.dt("job", "get", "nightly", "--json").returncode == 1


def test_dt_job_rm_stops_a_run_of_the_version_first(nightly):
    Service("Web", jobs_entry.serve).save()
    Service("Web", jobs_entry.serve, env_vars={"X": "2"}).save()
    started = nightly.dt("job", "start", "web", "--json")  # version 2, through the daemon
    run_id = json.loads(started.stdout)["run_id"]
    deadline = time.monotonic() + 120
    while jobs.get_run(context(), run_id, events=False)["state"] != "running":
        assert time.monotonic() < deadline, "the service did not come up"
        time.sleep(0.2)
    out = nightly.dt("job", "rm", "web", "--version", "2")
    assert out.returncode == 0, out.stderr
    job = jobs.get(context(), "web")
    assert (job["version"], job["desired_state"], job["status"]) == (1, "stopped", "never run")
    assert _versions("web") == [1]
    with pytest.raises(NotFoundError):
        jobs.get_run(context(), run_id)  # the run of version 2 went with it


@pytest.mark.parametrize("argv, words", [
    (["job", "rm", "nightly", "--version", "7"], "has no version 7; it has 1, 2, 3"),
    (["job", "rm", "nightly", "--version", "two"], "invalid --version 'two'"),
    (["job", "rm", "nightly", "--version", "0"], "invalid --version '0'"),
    (["job", "rm", "nightly", "--version", "1", "--all"], "--version and --all"),
    (["job", "rm", "nightly", "nightly", "--version", "1"], "--version takes exactly one job"),
    (["job", "rm", "missing"], "job 'missing' not found"),
    (["job", "rm", "nightly", "missing"], "job 'missing' not found"),
    (["job", "rm", "missing", "--all"], "job 'missing' not found"),
    # the platform's undo of a removal: localtailr keeps no removed version to restore
    (["job", "restore", "nightly", "--version", "2"], "keeps no removed job or version"),
    (["job", "restore", "nightly", "--all"], "keeps no removed job or version"),
])
def test_bad_input_is_one_line_and_changes_nothing(nightly, argv, words):
    before = _snapshot(nightly.home)
    assert words in _one_line_failure(nightly.dt(*argv))
    assert _snapshot(nightly.home) == before


def test_no_permission_is_one_line_and_changes_nothing(nightly):
    nightly.dt("user", "add", "mallory", "--groups", "None")
    jobs.start(context(), "nightly", version=1)  # no daemon yet: stays pending
    before = _snapshot(nightly.home)
    for argv in (["job", "rm", "nightly"], ["job", "rm", "nightly", "--version", "1"],
                 ["job", "rm", "nightly", "--all"]):
        line = _one_line_failure(nightly.dt(*argv, LOCALTAILR_USER="mallory"))
        assert "lacks" in line, line
    assert _snapshot(nightly.home) == before
