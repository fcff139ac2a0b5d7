"""Removing one version of a job (``platform.jobs.rm_version``, what ``dt job rm`` without
``--all`` does on the platform): the job keeps its other versions, the current version
moves back to the newest remaining one, the last version takes the job with it; the
removed version's runs go with it; numbers are not given out again. Bad input changes
nothing. Through the service layer, no daemon (a started run stays pending)."""

import sqlite3

import pytest
from support import jobs_entry

from localtailr import BatchJob, User
from localtailr.core.errors import NotFoundError, PermissionError
from localtailr.platform import jobs
from localtailr.platform.context import context


def dump(home):
    conn = sqlite3.connect(home.db_path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def three(localtailr_home):
    """Job "nightly" with versions 1, 2, 3 (X=a, b, c); version 3 is current."""
    for x in "abc":
        BatchJob("Nightly", jobs_entry.hello, env_vars={"X": x}).save()
    return localtailr_home


def _versions(name="nightly"):
    return [v["version"] for v in jobs.versions(context(), name)]


def test_the_latest_version_goes_and_the_newest_remaining_becomes_current(three):
    ctx = context()
    old = jobs.start(ctx, "nightly", version=2)
    jobs.stop(ctx, "nightly", run_id=old["run_id"])
    latest = jobs.start(ctx, "nightly")
    jobs.stop(ctx, "nightly", run_id=latest["run_id"])
    (three.home.run_dir(latest["run_id"])).mkdir(parents=True, exist_ok=True)
    job = jobs.rm_version(ctx, "nightly")
    assert job["version"] == 2 and _versions() == [1, 2]
    assert job["definition"]["env_vars"]["X"] == "b"
    assert [r["run_id"] for r in jobs.runs(ctx, "nightly")] == [old["run_id"]]
    with pytest.raises(NotFoundError):
        jobs.get_run(ctx, latest["run_id"])
    assert not three.home.run_dir(latest["run_id"]).exists()
    # neither the version number nor the run id is given out again
    again = jobs.run(ctx, BatchJob("Nightly", jobs_entry.hello).to_dict())
    assert again["version"] == 4 and again["run_id"] > latest["run_id"]
    assert _versions() == [1, 2, 4]


def test_an_older_version_goes_and_the_current_one_stays(three):
    job = jobs.rm_version(context(), "nightly", 1)
    assert job["version"] == 3 and _versions() == [2, 3]
    jobs.set_version(context(), "nightly", 2)
    assert jobs.rm_version(context(), "nightly", 3)["version"] == 2  # current, not latest


def test_the_last_version_takes_the_job_with_it(three):
    ctx = context()
    run = jobs.start(ctx, "nightly", version=1)
    jobs.stop(ctx, "nightly", run_id=run["run_id"])
    assert jobs.rm_version(ctx, "nightly", 3)["version"] == 2
    assert jobs.rm_version(ctx, "nightly", 2)["version"] == 1
    assert jobs.rm_version(ctx, "nightly", 1) is None
    with pytest.raises(NotFoundError):
        jobs.get(ctx, "nightly")
    with pytest.raises(NotFoundError):
        jobs.get_run(ctx, run["run_id"])
    BatchJob("Nightly", jobs_entry.hello).save()
    assert _versions() == [1]  # a new job, numbered afresh


def test_a_version_with_an_active_run_is_refused_and_nothing_changes(three):
    ctx = context()
    run = jobs.start(ctx, "nightly", version=2)  # pending: active
    before = dump(three.home)
    with pytest.raises(ValueError, match=rf"version 2 of job 'nightly' has active runs \({run['run_id']}\)"):
        jobs.rm_version(ctx, "nightly", 2)
    assert dump(three.home) == before
    assert jobs.rm_version(ctx, "nightly", 1)["version"] == 3  # another version may go


@pytest.mark.parametrize("call, error, words", [
    (lambda: jobs.rm_version(context(), "nightly", 7), ValueError, "has no version 7; it has 1, 2, 3"),
    (lambda: jobs.rm_version(context(), "nightly", 0), ValueError, "version"),
    (lambda: jobs.rm_version(context(), "nightly", "2"), ValueError, "version"),
    (lambda: jobs.rm_version(context(), "missing"), NotFoundError, "job 'missing' not found"),
    (lambda: jobs.rm_version(context(user="mallory"), "nightly"), PermissionError, "OPERATE"),
])
def test_bad_input_is_refused_and_changes_nothing(three, call, error, words):
    User.add("mallory")
    before = dump(three.home)
    with pytest.raises(error, match=words):
        call()
    assert dump(three.home) == before
    assert _versions() == [1, 2, 3]
