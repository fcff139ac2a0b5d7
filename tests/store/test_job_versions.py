"""store/job_versions.py: the one reader of a job version's definition (cached, shared)."""

from __future__ import annotations

from localtailr.platform import jobs
from localtailr.platform.context import context
from localtailr.pytest_plugin import make_home
from localtailr.store import job_versions

ENTRY = {"module": "support.jobs_entry", "qualname": "hello", "sys_path": None, "file": None, "kind": "module"}


def _home(tmp_path):
    ctx = context(make_home(tmp_path / "home"), "root")
    jobs.save(ctx, {"name": "j", "type": "batch", "entrypoint": ENTRY, "env_vars": {"A": "1"}})
    job_id = ctx.conn.execute("SELECT job_id FROM jobs WHERE name = 'j'").fetchone()[0]
    return ctx, job_id


def test_a_version_is_read_once_and_an_unknown_one_is_none(tmp_path):
    ctx, job_id = _home(tmp_path)
    first = job_versions.definition(ctx.conn, job_id, 1)
    assert first["env_vars"] == {"A": "1"}
    assert job_versions.definition(ctx.conn, job_id, 1) is first  # cached
    assert job_versions.definition(ctx.conn, job_id, 2) is None
    assert job_versions.definition(ctx.conn, job_id + 1, 1) is None
    assert job_versions.definition_for_run(ctx.conn, 10_000) is None


def test_a_run_reads_the_definition_of_its_own_version(tmp_path):
    ctx, job_id = _home(tmp_path)
    run = jobs.start(ctx, "j")
    jobs.save(ctx, {"name": "j", "type": "batch", "entrypoint": ENTRY, "env_vars": {"A": "2"}})
    assert job_versions.definition_for_run(ctx.conn, run["run_id"])["env_vars"] == {"A": "1"}
    assert jobs.definition_for_run(ctx.conn, run["run_id"])["env_vars"] == {"A": "1"}


def test_what_platform_changes_in_a_definition_it_read_leaves_the_cache_alone(tmp_path):
    """promote changes the definition it read (its environment): its own copy, not the
    shared one the daemon and the engine read."""
    ctx, job_id = _home(tmp_path)
    cached = job_versions.definition(ctx.conn, job_id, 1)
    jobs.promote(ctx, "j")
    assert job_versions.definition(ctx.conn, job_id, 1) is cached
    assert "promoted_from" not in cached and cached.get("environment") in (None, "dev")
    mine = jobs.definition_for_run(ctx.conn, jobs.start(ctx, "j")["run_id"])
    mine["env_vars"]["A"] = "changed"
    assert cached["env_vars"] == {"A": "1"}
