"""Issue 5, environments and versions: versions listed, an older one made current again,
promote dev → pre → prod (needs PROMOTE), and a job seeing its own environment."""

import pytest
from support import jobs_entry

from localtailr import KV, BatchJob, Environment, Service, User
from localtailr.core.errors import PermissionError
from localtailr.platform import jobs
from localtailr.platform.context import context


def test_versions_and_set_version(localtailr_home):
    svc = Service("s", jobs_entry.serve, env_vars={"V": 1})
    svc.save()
    svc.env_vars = {"V": 2}
    svc.save()
    versions = svc.versions()
    assert [(v["version"], v["current"]) for v in versions] == [(1, False), (2, True)]
    assert versions[0]["definition"]["env_vars"] == {"V": 1}
    job = svc.set_version(1)
    assert job["version"] == 1 and job["definition"]["env_vars"] == {"V": 1}
    run = jobs.start(context(), "s")
    assert run["version"] == 1
    with pytest.raises(ValueError, match="has no version 7; it has 1, 2"):
        svc.set_version(7)


def test_promote_copies_the_current_version_to_the_next_environment(localtailr_home):
    job = BatchJob("Nightly", jobs_entry.hello, env_vars={"X": "a"})
    job.save()
    job.env_vars = {"X": "b"}
    job.save()
    pre = job.promote()
    assert (pre["environment"], pre["version"]) == ("pre", 1)
    assert pre["definition"]["env_vars"] == {"X": "b"}
    assert pre["definition"]["environment"] == "pre"
    assert pre["definition"]["promoted_from"] == {"environment": "dev", "version": 2}
    old = jobs.promote(context(), "nightly", version=1)  # an older dev version, again to pre
    assert (old["version"], old["definition"]["env_vars"]) == (2, {"X": "a"})
    prod = jobs.promote(context(environment="pre"), "Nightly")
    assert prod["environment"] == "prod" and prod["definition"]["env_vars"] == {"X": "a"}
    with pytest.raises(ValueError, match="cannot promote beyond prod"):
        jobs.promote(context(environment="prod"), "nightly")
    assert {j["environment"] for j in jobs.ls(context(), all_environments=True)} == {"dev", "pre", "prod"}


def test_promote_needs_promote_permission(localtailr_home):
    User.add("alice")
    User.add("bob")
    localtailr_home.as_user("alice")
    BatchJob("j", jobs_entry.hello).save()
    with pytest.raises(PermissionError, match="lacks PROMOTE"):
        jobs.promote(context(user="bob"), "j")
    assert jobs.ls(context(environment="pre")) == []  # nothing half-done
    jobs.promote(context(user="alice"), "j")
    # in pre, the job has the ACL of the one promoted: bob still may not promote it on
    with pytest.raises(PermissionError, match="lacks PROMOTE"):
        jobs.promote(context(user="bob", environment="pre"), "j")


def test_a_job_sees_its_own_environment(localtailr_home, monkeypatch):
    KV(Environment.PROD).put("db", "prod-db")
    KV(Environment.DEV).put("db", "dev-db")
    job = BatchJob("Report", jobs_entry.hello, environment=Environment.PROD, env_vars={"MODE": "x"})
    run = jobs.run(context(environment="prod"), job.to_dict(), params={"rundate": "2024-05-01"})
    definition = jobs.definition_for_run(context().conn, run["run_id"])
    env = jobs.job_environment_vars(definition, run, localtailr_home.home)
    assert env["DATATAILR_JOB_ENVIRONMENT"] == "prod"
    assert env["DATATAILR_JOB_NAME"] == "report" and env["DATATAILR_JOB_TYPE"] == "batch"
    assert env["DATATAILR_RUN_ID"] == env["LOCALTAILR_RUN_ID"] == str(run["run_id"])
    assert env["DATATAILR_JOB_VERSION"] == "1"
    assert env["DATATAILR_BATCH_ARG_RUNDATE"] == "2024-05-01"
    assert env["LOCALTAILR_HOME"] == str(localtailr_home.root)
    assert env["LOCALTAILR_USER"] == "root" and env["MODE"] == "x"
    assert "PORT" not in env
    # what the job's code then sees:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert KV().get("db") == "prod-db"


def test_services_get_their_port(localtailr_home):
    ctx = context()
    run = jobs.run(ctx, Service("s", jobs_entry.serve).to_dict())
    ctx.conn.execute("UPDATE runs SET port = 8123 WHERE run_id = ?", (run["run_id"],))
    row = ctx.conn.execute("SELECT * FROM runs WHERE run_id = ?", (run["run_id"],)).fetchone()
    env = jobs.job_environment_vars(jobs.definition_for_run(ctx.conn, run["run_id"]), row)
    assert env["PORT"] == env["DATATAILR_SERVICE_PORT"] == "8123"
