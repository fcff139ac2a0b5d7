"""Issue 9: a job removed and deployed again from other code runs the new code, and job
and run ids are never reused (no run lands in an old run's folder). A real daemon."""

import importlib
import shutil
import sqlite3
import sys

import pytest
from support import jobs_entry

from localtailr import BatchJob, Service, store
from localtailr.platform import jobs, logs
from localtailr.platform.context import context
from localtailr.runtime.daemon import control


@pytest.fixture
def daemon_home(localtailr_home, monkeypatch):
    monkeypatch.setenv("LOCALTAILR_STOP_GRACE", "2")
    yield localtailr_home
    control.stop(localtailr_home.home)


def module(tmp_path, name: str, says: str):
    """A fresh module ``name`` in its own folder whose ``serve`` and ``once`` print ``says``."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{name}.py").write_text(
        "import time\n\n"
        f"def serve():\n    print({says!r}, flush=True)\n"
        "    while True:\n        time.sleep(0.2)\n\n"
        f"def once():\n    print({says!r}, flush=True)\n")
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))


def job_id(name: str) -> int:
    conn = store.connection(context().home)
    return conn.execute("SELECT job_id FROM jobs WHERE name = ?", (name,)).fetchone()[0]


def first_line(run_id: int) -> str:
    return next(logs.follow(context(), run_id, timeout=120))


@pytest.mark.slow
def test_a_service_removed_and_deployed_again_runs_the_new_code(daemon_home, tmp_path):
    old = module(tmp_path, "svc_old_code", "old code")
    svc = Service("svc", old.serve, python_version="auto")
    first = svc.run()
    assert first_line(first["run_id"]) == "old code"
    svc.stop()
    jobs.wait(context(), first["run_id"], timeout=120)
    old_job_id = job_id("svc")
    svc.delete()

    new = module(tmp_path, "svc_new_code", "new code")
    again = Service("svc", new.serve, python_version="auto").run()  # the same daemon
    assert again["run_id"] > first["run_id"]
    assert job_id("svc") > old_job_id
    assert first_line(again["run_id"]) == "new code"


@pytest.mark.slow
def test_run_ids_are_never_reused_after_rm(daemon_home, tmp_path):
    code = module(tmp_path, "batch_code", "batch ran")
    job = BatchJob("once", code.once, python_version="auto")
    seen = []
    for _ in range(3):
        run = job.run()
        assert job.wait(timeout=120)["state"] == "succeeded"
        seen.append(run["run_id"])
        job.delete()
        assert not daemon_home.home.run_dir(run["run_id"]).exists()
    assert seen == sorted(set(seen))  # each rm'd job's run id is new, never the old one
    run = job.run()
    assert run["run_id"] > seen[-1]
    assert job.wait(timeout=120)["state"] == "succeeded"
    assert job.logs().strip() == "batch ran"


def test_ids_of_removed_jobs_and_runs_never_come_back(localtailr_home):
    ctx = context()
    definition = BatchJob("j", jobs_entry.hello, python_version="auto").to_dict()
    ids, runs = [], []
    for _ in range(3):
        run = jobs.run(ctx, dict(definition))
        ids.append(job_id("j"))
        runs.append(run["run_id"])
        store.connection(ctx.home).execute("UPDATE runs SET state = 'succeeded'")
        jobs.rm(ctx, "j")
    assert ids == sorted(set(ids)) and runs == sorted(set(runs))


def test_cached_definitions_do_not_outlive_a_home_made_again(tmp_path, monkeypatch):
    from localtailr.core.home import Home
    from localtailr.runtime.workflows import engine as workflow_runner
    from localtailr.store import job_versions

    home = Home(tmp_path / "home")
    monkeypatch.setenv("LOCALTAILR_HOME", str(home.root))
    for says in ("first home", "second home"):
        ctx = context(home)
        job = BatchJob("j", jobs_entry.hello, python_version="auto").to_dict()
        job["env_vars"] = {"SAYS": says}
        jobs.save(ctx, job)
        conn = store.connection(home)
        [(jid, version)] = conn.execute("SELECT job_id, current_version FROM jobs").fetchall()
        assert (jid, version) == (1, 1)  # a new home numbers from 1 again
        assert job_versions.definition(conn, jid, version)["env_vars"] == {"SAYS": says}
        assert workflow_runner.definition(conn, jid, version)["env_vars"] == {"SAYS": says}
        store.forget(home)
        shutil.rmtree(home.root)  # what `localtailr reset` does


def test_an_existing_home_keeps_its_jobs_and_runs_and_numbers_on(tmp_path):
    from localtailr.core.home import Home

    home = Home(tmp_path / "home")
    home.ensure()
    raw = sqlite3.connect(home.db_path, isolation_level=None)
    for script in store.MIGRATIONS[:2]:  # a home of schema 2, before ids were kept
        for statement in store._statements(script):
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 2")
    for jid in (1, 2):
        raw.execute("INSERT INTO jobs (job_id, name, environment, type, owner_id, created_at)"
                    " VALUES (?, ?, 'dev', 'batch', 0, 0)", (jid, f"job{jid}"))
        raw.execute("INSERT INTO job_versions VALUES (?, 1, '{}', 0, 0)", (jid,))
    for rid, jid in ((1, 1), (2, 1), (3, 2)):
        raw.execute("INSERT INTO runs (run_id, job_id, version, state, run_as, environment,"
                    " created_at) VALUES (?, ?, 1, 'succeeded', 0, 'dev', 0)", (rid, jid))
        raw.execute("INSERT INTO run_events VALUES (?, 0, 'succeeded', NULL)", (rid,))
    raw.close()
    (home.runs / "9").mkdir()  # left behind by a run removed before the upgrade

    conn = store.connect(home)
    assert store.schema_version(conn) == store.SCHEMA_VERSION
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert [tuple(r) for r in conn.execute("SELECT job_id, name FROM jobs")] == [
        (1, "job1"), (2, "job2")]
    assert conn.execute("SELECT count(*) FROM job_versions").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM run_events").fetchone()[0] == 3
    assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'"
                                       " AND tbl_name = 'runs'")} >= {"runs_job", "runs_state",
                                                                        "runs_parent"}
    conn.execute("DELETE FROM jobs WHERE job_id = 2")  # cascades still
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    new_job = conn.execute("INSERT INTO jobs (name, environment, type, owner_id, created_at)"
                           " VALUES ('job3', 'dev', 'batch', 0, 0)").lastrowid
    new_run = conn.execute("INSERT INTO runs (job_id, version, state, run_as, environment,"
                           " created_at) VALUES (?, 1, 'pending', 0, 'dev', 0)",
                           (new_job,)).lastrowid
    assert new_job == 3 and new_run == 10
