"""Workflows and schedules through the real runtime, in a temporary home.

- ``workflow per-task overhead``: a workflow of 200 no-op tasks in 20 parallel chains
  of 10 runs through the daemon (after a warm-up run that builds the image); the
  overhead per task is (wall - ideal) / tasks with ideal = 0 (the tasks do nothing),
  against the image's ``python -c pass``.
- ``schedule fire lag p99``: 1,000 jobs due in the same minute, fired by the real daemon
  (which waits on its wake-up socket until the next fire time); lag = when the run row
  was written - its fire time. The clock is moved (an offset) so the minute comes in two
  seconds, not up to sixty.

Run: ``.venv/bin/python -m bench workflows`` or ``.venv/bin/python bench/bench_workflows.py``.
"""

from __future__ import annotations

import importlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

CHAINS, LENGTH = 20, 10
SCHEDULED_JOBS = 1000

TASKS_MODULE = textwrap.dedent(f"""
    from localtailr import Schedule, task, workflow

    @task()
    def noop(x=None):
        return None

    @workflow(name="Bench Chains", max_parallel={CHAINS})
    def chains(chains={CHAINS}, length={LENGTH}):
        for c in range(chains):
            prev = noop().alias(f"c{{c}}-0")
            for i in range(1, length):
                prev = noop(prev).alias(f"c{{c}}-{{i}}")

    def one():
        noop()

    def every_minute(name):
        return workflow(name=name, schedule=Schedule(cron_expression="0 * * * * *"))(one)
""")


def _row(*args, **kwargs) -> dict:
    try:
        from bench import row
    except ImportError:  # run as a script
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from bench import row
    return row(*args, **kwargs)


def _python_pass(python: str, rounds: int = 10) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _image_python(home) -> str:
    from localtailr import store

    conn = store.connection(home)
    key = conn.execute(
        "SELECT image_key FROM runs WHERE image_key IS NOT NULL ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    if key and (home.venvs / key[0] / "bin" / "python").exists():
        return str(home.venvs / key[0] / "bin" / "python")
    return sys.executable


def bench_overhead(home, mod) -> dict:
    warm = mod.chains(chains=2, length=2)  # builds the image once
    warm.wait(600)
    run = mod.chains()
    t = time.perf_counter()
    state = run.wait(600)
    wall = time.perf_counter() - t
    tasks = CHAINS * LENGTH
    per_task = wall / tasks
    floor = _python_pass(_image_python(home))
    return _row(
        "workflow per-task overhead", per_task * 1000, "ms", floor * 1000,
        "image's python -c pass", target="<= 1x", ok=state == "succeeded" and per_task <= floor,
        note=f"{tasks} no-op tasks, {CHAINS} chains of {LENGTH}, {os.cpu_count()} cores, "
             f"wall {wall:.2f}s, run {state}",
    )


def bench_fire_lag(home, mod) -> dict:
    from localtailr import store
    from localtailr.runtime.daemon import daemon
    from localtailr.store.clock import clock

    c = clock(home)
    c.advance(60 - c.now() % 60 + 1)  # just past a minute: the saving ends before the next
    for i in range(SCHEDULED_JOBS):
        mod.every_minute(f"scheduled {i}")(save_only=True)
    daemon.ensure_running(home, quiet=True)
    # Move the clock so that the next minute starts in 2 s of real time; the daemon reads
    # the clock file and wakes for the fire time by itself.
    now = c.now()
    due = float(int(now) - int(now) % 60 + 60)
    c.advance(due - now - 2)
    offset = c.now() - time.time()
    conn = store.connection(home)
    deadline = time.monotonic() + 30
    query = "FROM runs WHERE trigger = 'schedule' AND abs(scheduled_for - ?) < 0.5"
    count = 0
    while count < SCHEDULED_JOBS and time.monotonic() < deadline:
        time.sleep(0.05)
        count = conn.execute(f"SELECT count(*) {query}", (due,)).fetchone()[0]
    lags = sorted((r[0] + offset - r[1]) * 1000
                  for r in conn.execute(f"SELECT created_at, scheduled_for {query}", (due,)))
    daemon.stop(home)
    c.reset()
    p99 = lags[int(len(lags) * 0.99) - 1] if lags else None
    return _row(
        "schedule fire lag p99", p99, "ms", None, "", target="<= 200 ms",
        ok=p99 is not None and len(lags) == SCHEDULED_JOBS and p99 <= 200,
        note=f"{len(lags)} of {SCHEDULED_JOBS} jobs due in the same minute, fired by the "
             f"daemon; median {statistics.median(lags) if lags else float('nan'):.1f} ms",
    )


def run() -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="localtailr-bench-wf-"))
    home_path = folder / "home"
    old_home = os.environ.get("LOCALTAILR_HOME")
    os.environ["LOCALTAILR_HOME"] = str(home_path)
    (folder / "bench_wf_tasks.py").write_text(TASKS_MODULE)
    sys.path.insert(0, str(folder))
    from localtailr.core.home import Home

    home = Home(home_path).ensure()
    rows = []
    try:
        mod = importlib.import_module("bench_wf_tasks")
        rows.append(bench_overhead(home, mod))
        from localtailr.runtime.daemon import daemon

        daemon.stop(home)  # a fresh daemon for the schedules
        rows.append(bench_fire_lag(home, mod))
    finally:
        try:
            from localtailr.runtime.daemon import daemon

            daemon.stop(home)
        except Exception:  # noqa: BLE001 - cleaning up
            pass
        sys.path.remove(str(folder))
        sys.modules.pop("bench_wf_tasks", None)
        if old_home is None:
            os.environ.pop("LOCALTAILR_HOME", None)
        else:
            os.environ["LOCALTAILR_HOME"] = old_home
        shutil.rmtree(folder, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
