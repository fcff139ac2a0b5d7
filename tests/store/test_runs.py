"""store/runs.py: the one owner of run creation and state changes, held to core's table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localtailr import store
from localtailr.core import runs as table
from localtailr.core.runs import ACTIVE, STATES, TERMINAL, TransitionError
from localtailr.platform import jobs
from localtailr.platform.context import context
from localtailr.pytest_plugin import make_home
from localtailr.store import runs

ENTRY = {"module": "support.jobs_entry", "qualname": "hello", "sys_path": None, "file": None, "kind": "module"}
ROOT = Path(__file__).resolve().parents[2] / "localtailr"


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    home = make_home(tmp_path_factory.mktemp("runs") / "home")
    ctx = context(home, "root")
    jobs.save(ctx, {"name": "prop", "type": "batch", "entrypoint": ENTRY})
    return ctx, ctx.conn.execute("SELECT * FROM jobs WHERE name = 'prop'").fetchone()


def _create(ctx, job, state="pending") -> int:
    with store.transaction(ctx.conn) as conn:
        return runs.create(conn, job_id=job["job_id"], version=1, run_as=0, environment="dev",
                           trigger="manual", detail="test", state=state)


def _history(conn, run_id) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT state FROM run_events WHERE run_id = ? ORDER BY rowid", (run_id,))
        if r[0] in STATES]


step = st.one_of(
    st.tuples(st.just("move"), st.sampled_from(STATES),
              st.none() | st.lists(st.sampled_from(STATES), max_size=3).map(tuple)),
    st.tuples(st.just("stop"), st.none(), st.none()),
    st.tuples(st.just("columns"), st.none(), st.none()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.sampled_from(table.CREATED_AS), steps=st.lists(step, max_size=12))
def test_random_sequences_never_reach_a_state_the_table_forbids(job, first, steps):
    ctx, j = job
    run_id = _create(ctx, j, first)
    conn = ctx.conn
    for kind, target, only_from in steps:
        before = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if kind == "move":
            moved = runs.transition(ctx.home, run_id, target, "step", only_from=only_from)
            expected = table.allowed(before["state"], target) and (
                only_from is None or before["state"] in only_from)
            assert moved == expected
            if not moved:  # a refused move changes nothing
                assert tuple(conn.execute("SELECT * FROM runs WHERE run_id = ?",
                                          (run_id,)).fetchone()) == tuple(before)
        elif kind == "stop":
            with store.transaction(conn):
                how = runs.request_stop(conn, run_id, "stopped by test")
            assert how == ("killed" if before["state"] == "pending" else "stop-requested")
        else:
            runs.transition(ctx.home, run_id, None, reason="note", peak_rss=1)
    row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    history = _history(conn, run_id)
    assert history[0] == first and history[-1] == row["state"]
    for a, b in zip(history, history[1:]):
        assert table.allowed(a, b), f"{a} -> {b} in {history}"
    if row["state"] in TERMINAL:
        assert row["ended_at"] is not None
    # once ended, always ended: nothing after the first end state but the same state again
    ends = [i for i, s in enumerate(history) if s in TERMINAL]
    if ends:
        assert set(history[ends[0]:]) == {history[ends[0]]}


def test_an_end_state_is_final(job):
    ctx, j = job
    for end in TERMINAL:
        run_id = _create(ctx, j)
        if end != "skipped":
            assert runs.transition(ctx.home, run_id, "running", "started")
        assert runs.transition(ctx.home, run_id, end, "done")
        for state in ACTIVE + tuple(s for s in TERMINAL if s != end):
            assert not runs.transition(ctx.home, run_id, state, "again")
        assert ctx.conn.execute("SELECT state FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0] == end


@pytest.mark.parametrize("state", ["running", "failed", "bogus", None])
def test_a_run_is_created_pending_skipped_or_succeeded_only(job, state):
    ctx, j = job
    with pytest.raises(TransitionError, match="run"):
        _create(ctx, j, state)


def test_unknown_states_columns_and_state_events_are_refused(job):
    ctx, j = job
    run_id = _create(ctx, j)
    with pytest.raises(TransitionError, match="unknown run state 'done'"):
        runs.transition(ctx.home, run_id, "done")
    with pytest.raises(ValueError, match="unknown run columns"):
        runs.transition(ctx.home, run_id, "building", owner="x")
    with pytest.raises(TransitionError, match="is a run state"):
        runs.event(ctx.home, run_id, "failed", "not through transition")
    assert ctx.conn.execute("SELECT state FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0] == "pending"


def test_a_missing_run_as_user_is_refused_never_replaced(job):
    ctx, _ = job
    assert runs.run_as_id(ctx.conn, None, 7) == 7
    assert runs.run_as_id(ctx.conn, "root", 7) == 0
    with pytest.raises(ValueError, match="run_as user 'ghost' no longer exists"):
        runs.run_as_id(ctx.conn, "ghost", 7)


def test_only_the_runs_module_writes_runs_and_their_events():
    writes = re.compile(r"(INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE)\s+(runs|run_events)\b", re.I)
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                 if writes.search(p.read_text()) and p != ROOT / "store" / "runs.py"]
    assert offenders == []


def test_one_definition_of_the_run_states():
    literal = re.compile(r"""=\s*\(\s*["']succeeded["'],\s*["']failed["']""")
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                 if literal.search(p.read_text()) and p != ROOT / "core" / "runs.py"]
    assert offenders == []
