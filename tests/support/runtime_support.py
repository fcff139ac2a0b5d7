"""Helpers for the runtime tests: a real daemon in the test's home, jobs from
``tests/runtime_jobs.py`` submitted through the service layer, and polling of the store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from localtailr import store
from localtailr.platform import jobs
from localtailr.platform.context import context
from localtailr.runtime.daemon import control

TESTS = Path(__file__).resolve().parents[1]  # tests/: the folder support.* imports from
TERMINAL = ("succeeded", "failed", "killed", "lost")


def entry(qualname: str, module: str = "support.runtime_jobs") -> dict:
    return {"module": module, "qualname": qualname, "sys_path": str(TESTS),
            "file": str(TESTS / f"{module.replace('.', '/')}.py"), "kind": "module"}


def submit(home, name: str, qualname: str, type: str = "batch", params=None, **definition) -> dict:
    """Save and run a job whose entrypoint is ``runtime_jobs.<qualname>``; return the run."""
    d = {"name": name, "type": type, "entrypoint": entry(qualname),
         "image": {"python_version": "auto"}, **definition}
    return jobs.run(context(home), d, params=params)


def row(home, run_id: int):
    return store.connection(home).execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()


def events(home, run_id: int) -> list[tuple[str, str]]:
    return [(r["state"], r["detail"]) for r in store.connection(home).execute(
        "SELECT state, detail FROM run_events WHERE run_id = ? ORDER BY at, rowid", (run_id,))]


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_state(home, run_id: int, states=TERMINAL, timeout: float = 60.0):
    """The run's row once its state is one of ``states``."""
    states = (states,) if isinstance(states, str) else tuple(states)

    def check():
        r = row(home, run_id)
        return r if r is not None and r["state"] in states else None

    try:
        return wait_for(check, timeout, f"run {run_id} to be {'/'.join(states)}")
    except AssertionError:
        r = row(home, run_id)
        raise AssertionError(f"run {run_id} is {r['state'] if r else None} ({r['reason'] if r else ''}), "
                             f"not {states}; events {events(home, run_id)}") from None


def runs_of(home, name: str) -> list:
    return store.connection(home).execute(
        "SELECT r.* FROM runs r JOIN jobs j ON j.job_id = r.job_id WHERE j.name = ? "
        "ORDER BY r.run_id", (jobs.normalise_name(name),)).fetchall()


def read(home, run_id: int, stream: str = "stdout") -> str:
    path = home.run_dir(run_id) / stream
    return path.read_text() if path.exists() else ""


@pytest.fixture
def daemon(localtailr_home, monkeypatch):
    """A real daemon for the test's home (started detached); stopped, with everything it
    ran, at the end of the test."""
    monkeypatch.setenv("LOCALTAILR_STOP_GRACE", "2")
    home = localtailr_home.home
    info = control.ensure_running(home, quiet=True)
    yield info
    control.stop(home)
