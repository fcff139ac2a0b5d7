"""Run one workflow run to its end from this process, without the daemon.

What the daemon does for a workflow run, in miniature: call ``advance``, start
each ``pending`` task run as ``python -m localtailr.runtime.workflows.task_runner <id>``
(own process group, stdout/stderr in ``runs/<id>/``), mark it ``succeeded`` or
``failed`` from its exit code, and kill it on a ``stop-requested`` event. For
tests, the benchmark and ``handle.wait()`` when no daemon is available. It
claims a pending task in a transaction (pending -> running), so it never starts
a task that a daemon already started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from ... import store
from ...core.home import Home
from ...core.image_spec import source_folder
from . import engine


def _claim(home: Home, run_id: int) -> bool:
    conn = store.connection(home)
    with store.transaction(conn):
        row = conn.execute("SELECT state FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None or row[0] != "pending":
            return False
        engine.set_state(conn, run_id, "running", None, time.time())
    return True


def _finish(home: Home, run_id: int, code: int, killed_reason: str | None) -> None:
    conn = store.connection(home)
    with store.transaction(conn):
        row = conn.execute("SELECT state FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None or row[0] in engine.DONE:
            return
        conn.execute("UPDATE runs SET exit_code = ? WHERE run_id = ?", (code, run_id))
        if killed_reason is not None:
            engine.set_state(conn, run_id, "killed", killed_reason, time.time())
        elif code == 0:
            engine.set_state(conn, run_id, "succeeded", None, time.time())
        else:
            engine.set_state(conn, run_id, "failed", f"exit code {code}", time.time())


def start_task(home: Home, run_id: int, python: str = sys.executable,
               env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start the task runner for child run ``run_id``; its output goes to ``runs/<id>/``."""
    folder = home.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    environ = dict(os.environ if env is None else env)
    environ["LOCALTAILR_HOME"] = str(home.root)
    environ["LOCALTAILR_RUN_ID"] = str(run_id)
    environ["DATATAILR_RUN_ID"] = str(run_id)
    with open(folder / "stdout", "ab") as out, open(folder / "stderr", "ab") as err:
        proc = subprocess.Popen(
            [python, "-m", "localtailr.runtime.workflows.task_runner", str(run_id)],
            stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=environ,
            cwd=folder, start_new_session=True,
        )
    conn = store.connection(home)
    store.write(conn, "UPDATE runs SET pid = ? WHERE run_id = ?", (proc.pid, run_id))
    return proc


def drive(home: Home, parent_run_id: int, timeout: float = 600.0,
          python: str = sys.executable, poll: float = 0.005) -> str:
    """Run the workflow run ``parent_run_id`` until it ends; its final state.

    Raises TimeoutError (after stopping it) if it has not ended within ``timeout`` seconds.
    """
    procs: dict[int, subprocess.Popen] = {}
    stopping: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    timed_out = False
    conn = store.connection(home)
    src = source_folder()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    try:
        while True:
            state = engine.advance(home, parent_run_id)
            pending = [
                r[0] for r in conn.execute(
                    "SELECT run_id FROM runs WHERE parent_run_id = ? AND state = 'pending'",
                    (parent_run_id,),
                )
            ]
            for run_id in pending:
                if _claim(home, run_id):
                    procs[run_id] = start_task(home, run_id, python, env)
            for run_id, detail in conn.execute(
                "SELECT e.run_id, e.detail FROM run_events e JOIN runs r ON r.run_id = e.run_id "
                "WHERE r.parent_run_id = ? AND e.state = ? AND r.state = 'running'",
                (parent_run_id, engine.STOP_REQUESTED),
            ).fetchall():
                proc = procs.get(run_id)
                if proc is not None and run_id not in stopping:
                    stopping[run_id] = detail or "stopped"
                    _killpg(proc)
            ended = False
            for run_id, proc in list(procs.items()):
                code = proc.poll()
                if code is not None:
                    _finish(home, run_id, code, stopping.pop(run_id, None))
                    del procs[run_id]
                    ended = True
            if state in engine.DONE and not procs:
                if timed_out:
                    raise TimeoutError(
                        f"workflow run {parent_run_id} did not end within {timeout}s"
                    )
                return state
            if time.monotonic() > deadline:
                engine.stop(home, parent_run_id, "the workflow driver (timeout)")
                deadline = float("inf")
                timed_out = True
                continue
            if not ended and not pending:
                time.sleep(poll)
    finally:
        for proc in procs.values():
            _killpg(proc)
            proc.wait()


def _killpg(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
