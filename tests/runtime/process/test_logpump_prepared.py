"""A log pump forked ahead of its run (``logpump.prepare``, as a fork server's child that
waits for its run does): ``start`` gives it the run's folder and cap, and the run's
output goes through it as through one started then; one dropped (``discard``), or whose
process ends without giving it a run, ends. Real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import localtailr.runtime.process.logpump as logpump_file

LOGPUMP = str(Path(logpump_file.__file__))

SCRIPT = """
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location("_localtailr_logpump", sys.argv[1])
pump = importlib.util.module_from_spec(spec); spec.loader.exec_module(pump)
run_dir, how = sys.argv[2], sys.argv[3]
pump.prepare()
prepared = pump._prepared[0]
with open(os.path.join(run_dir, "prepared"), "w") as f:
    f.write(str(prepared))
if how == "start":
    time.sleep(0.2)  # the run comes later
    started = pump.start(run_dir, 1 << 20)
    assert started == prepared, (started, prepared)
    print("to stdout", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
elif how == "discard":
    pump.discard()
    time.sleep(5)
"""


def _ended(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait(predicate, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_pump_prepared_ahead_takes_the_run_it_is_given(tmp_path):
    subprocess.run([sys.executable, "-c", SCRIPT, LOGPUMP, str(tmp_path), "start"], check=True,
                   timeout=60)
    pid = int((tmp_path / "prepared").read_text())
    assert (tmp_path / "logpump").read_text() == str(pid)
    _wait(lambda: _ended(pid), "the pump to end with its writer")
    assert (tmp_path / "stdout").read_text() == "to stdout\n"
    assert (tmp_path / "stderr").read_text() == "to stderr\n"


@pytest.mark.parametrize("how", ["discard", "exit"])
def test_a_pump_never_given_a_run_ends(tmp_path, how):
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, LOGPUMP, str(tmp_path), how])
    try:
        _wait(lambda: (tmp_path / "prepared").exists(), "the prepared pump")
        pid = int((tmp_path / "prepared").read_text())
        _wait(lambda: _ended(pid), "the unused pump to end")
        assert not (tmp_path / "stdout").exists() and not (tmp_path / "logpump").exists()
    finally:
        proc.kill()
        proc.wait()
