"""Issue 4, rights on jobs: OPERATE to operate, READ to see runs and logs, WRITE to save,
PROMOTE to promote; a refused call changes nothing."""

import sqlite3

import pytest
from support import jobs_entry

from localtailr import ACL, BatchJob, Service, User
from localtailr.core.errors import PermissionError
from localtailr.platform import jobs, logs
from localtailr.platform.context import context


@pytest.fixture
def owned(localtailr_home):
    for name in ("alice", "bob", "carol"):
        User.add(name)
    localtailr_home.as_user("alice")
    # through the service layer: no daemon, so nothing changes the store behind the test
    run = jobs.run(context(), Service("Svc", jobs_entry.serve).to_dict())
    return run["run_id"]


def dump(home):
    conn = sqlite3.connect(home.db_path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def test_the_creator_holds_every_permission(owned):
    ctx = context(user="alice")
    assert jobs.get(ctx, "svc")["owner"] == "alice"
    assert jobs.stop(ctx, "svc")[0]["state"] == "killed"
    jobs.start(ctx, "svc")
    jobs.save(ctx, jobs.get(ctx, "svc")["definition"])
    jobs.promote(ctx, "svc")


@pytest.mark.parametrize("action, permission", [
    (lambda ctx, run: jobs.get(ctx, "svc"), "READ"),
    (lambda ctx, run: jobs.runs(ctx, "svc"), "READ"),
    (lambda ctx, run: jobs.get_run(ctx, run), "READ"),
    (lambda ctx, run: jobs.wait(ctx, run, timeout=0), "READ"),
    (lambda ctx, run: jobs.versions(ctx, "svc"), "READ"),
    (lambda ctx, run: logs.read(ctx, run), "READ"),
    (lambda ctx, run: jobs.start(ctx, "svc"), "OPERATE"),
    (lambda ctx, run: jobs.stop(ctx, "svc"), "OPERATE"),
    (lambda ctx, run: jobs.restart(ctx, "svc"), "OPERATE"),
    (lambda ctx, run: jobs.rerun(ctx, run), "OPERATE"),
    (lambda ctx, run: jobs.rm(ctx, "svc"), "OPERATE"),
    (lambda ctx, run: jobs.set_version(ctx, "svc", 1), "WRITE"),
    (lambda ctx, run: jobs.save(ctx, {"name": "Svc", "type": "service", "run_as": "bob",
                                      "entrypoint": {"module": "support.jobs_entry", "qualname": "serve"}}), "WRITE"),
    (lambda ctx, run: jobs.promote(ctx, "svc"), "PROMOTE"),
])
def test_others_are_refused_and_nothing_changes(owned, localtailr_home, action, permission):
    ctx = context(user="bob")
    before = dump(localtailr_home.home)
    with pytest.raises(PermissionError, match=f"'bob' lacks {permission} permission on job/dev/svc"):
        action(ctx, owned)
    assert dump(localtailr_home.home) == before


def test_listings_show_only_what_the_caller_may_read(owned):
    assert jobs.ls(context(user="bob")) == []
    assert jobs.runs(context(user="bob")) == []
    assert [j["name"] for j in jobs.ls(context(user="alice"))] == ["svc"]


def test_granted_rights_work_one_by_one(localtailr_home):
    for name in ("alice", "bob"):
        User.add(name)
    localtailr_home.as_user("alice")
    job = BatchJob("j", jobs_entry.hello, acl=ACL(read=["alice", "bob"], operate=["alice"],
                                                  write=["alice"], promote=["alice"]))
    run = jobs.run(context(), job.to_dict(), job._acl)
    bob = context(user="bob")
    assert jobs.get_run(bob, run["run_id"])["state"] == "pending"  # READ: yes
    with pytest.raises(PermissionError, match="OPERATE"):
        jobs.stop(bob, "j")


def test_run_without_operate_saves_nothing(localtailr_home):
    for name in ("alice", "bob"):
        User.add(name)
    localtailr_home.as_user("alice")
    BatchJob("j", jobs_entry.hello, acl=ACL(read=["alice", "bob"], write=["alice", "bob"])).save()
    localtailr_home.as_user("bob")
    with pytest.raises(PermissionError, match="OPERATE"):
        jobs.run(context(), BatchJob("j", jobs_entry.hello).to_dict())
    assert len(jobs.versions(context(user="alice"), "j")) == 1
