"""Issue 9: a run's stdout/stderr cap holds whatever the writer's speed (its log pump
rotates before the cap and the writer waits on the pipe); the log says it was rotated."""

from __future__ import annotations

import psutil
import pytest
from support import runtime_support
from support.runtime_support import submit, wait_state

from localtailr.platform import jobs
from localtailr.platform.context import context

daemon = runtime_support.daemon  # the fixture: a real daemon for the test's home

CAP = 1 << 20
FLOOD_MIB = 200


@pytest.fixture
def capped(monkeypatch):
    monkeypatch.setenv("LOCALTAILR_LOG_CAP", str(CAP))


def _size(path) -> int:
    return path.stat().st_size if path.exists() else 0


@pytest.mark.slow
def test_a_fast_writer_is_held_to_the_cap(localtailr_home, capped, daemon):
    home = localtailr_home.home
    run = submit(home, "flood", "flood", env_vars={"FLOOD_MIB": FLOOD_MIB})
    ended = wait_state(home, run["run_id"], timeout=300)
    assert ended["state"] == "succeeded", dict(ended)
    folder = home.run_dir(run["run_id"])
    written = _size(folder / "stdout") + _size(folder / "stdout.1")
    assert written <= 2 * CAP, written  # 200 MiB written, at most two capped files kept
    text = (folder / "stdout.1").read_text() + (folder / "stdout").read_text()
    notes = [line for line in text.splitlines() if line.startswith("localtailr:")]
    assert notes and "rotated" in notes[-1] and "older output was dropped" in notes[-1]
    numbers = [int(line) for line in text.splitlines() if not line.startswith("localtailr:")]
    last = int((folder / "stderr").read_text().split()[-1])
    numbers = numbers[1:]  # the first kept line may be the tail of a line cut by rotation
    assert numbers == list(range(numbers[0], last + 1))  # the newest lines, none lost
    assert len(numbers) * 64 > CAP // 2


@pytest.mark.slow
def test_the_log_pump_is_not_counted_as_the_runs_and_outlives_a_kill(localtailr_home, capped,
                                                                       daemon):
    home = localtailr_home.home
    run = submit(home, "svc", "sleep_forever", type="service")
    pid = wait_state(home, run["run_id"], "running")["pid"]
    runtime_support.wait_for(lambda: "up" in runtime_support.read(home, run["run_id"]), 60,
                             "the service's first line")
    pump = int((home.run_dir(run["run_id"]) / "logpump").read_text())
    assert psutil.Process(pump).ppid() == pid
    jobs.stop(context(), "svc")
    ended = wait_state(home, run["run_id"])
    assert ended["state"] == "killed"
    assert "leftover" not in ended["reason"], ended["reason"]  # the pump is not a leftover
    runtime_support.wait_for(lambda: not psutil.pid_exists(pump)
                             or psutil.Process(pump).status() == psutil.STATUS_ZOMBIE,
                             30, "the pump to end once its writers are gone")
