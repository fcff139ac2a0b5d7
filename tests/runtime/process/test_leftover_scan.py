"""What the daemon reads of /proc when a run's process has ended
(``Supervised.leftover_scan``): for a run it started a moment ago, only the processes
with a higher pid, among which it still finds a grandchild that left the run's session;
for an adopted run, or one that lived long, every process. Real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from support.runtime_support import wait_for

from localtailr.runtime.process.procfs import create_time
from localtailr.runtime.process.supervised import Supervised

ESCAPES = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(sys.argv[1] + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(sys.argv[1] + ".tmp", sys.argv[1])
        time.sleep(120)
    os._exit(0)
"""


@pytest.fixture
def ended_run(localtailr_home, tmp_path):
    """A run's process (run id 7) that started a grandchild in a session of its own and
    ended; its ``Supervised`` and the grandchild's pid."""
    home = localtailr_home.home
    started = time.monotonic()
    env = {**os.environ, "LOCALTAILR_RUN_ID": "7", "LOCALTAILR_HOME": str(home.root)}
    proc = subprocess.Popen([sys.executable, "-c", ESCAPES, str(tmp_path / "pid")], env=env,
                            start_new_session=True)
    sv = Supervised(home, 7, 1, "batch", proc.pid, create_time(proc.pid) or time.time(),
                    None, "", None, proc=proc, pid_since=started)
    grandchild = int(wait_for(lambda: (tmp_path / "pid").exists()
                              and (tmp_path / "pid").read_text(), 60, "the grandchild"))
    proc.wait(60)
    yield sv, grandchild
    try:
        os.kill(grandchild, signal.SIGKILL)
    except ProcessLookupError:
        pass
    sv.close()


def test_a_run_just_ended_reads_only_newer_pids_and_finds_its_escaped_grandchild(ended_run):
    sv, grandchild = ended_run
    # as a task that ran for a few milliseconds (this machine's pid counter wraps at
    # pid_max, which FORK_RATE processes a second could reach in that run's lifetime only)
    sv.pid_since = time.monotonic() - 0.005
    scan = sv.leftover_scan()
    assert scan and min(scan) > sv.pid  # the test's own process (older) is not read
    assert os.getpid() not in scan
    assert grandchild in sv.leftovers(scan)
    sv.kill_tree()
    wait_for(lambda: not psutil.pid_exists(grandchild)
             or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE, 30, "the kill")


@pytest.mark.parametrize("how", ["adopted", "lived long"])
def test_an_adopted_or_long_run_reads_every_process(ended_run, how):
    sv, grandchild = ended_run
    if how == "adopted":
        sv.adopted = True
    else:
        sv.pid_since = time.monotonic() - 3600  # the pid counter may have gone round since
    scan = sv.leftover_scan()
    assert os.getpid() in scan and grandchild in scan
    assert grandchild in sv.leftovers(scan)
