"""Issue 9: services keep running unsupervised while the daemon is down; every face call
that leaves the daemon work brings it back (it adopts the survivors, then acts)."""

from __future__ import annotations

import os
import signal

import psutil
import pytest
from support import runtime_support
from support.runtime_support import submit, wait_for, wait_state

from localtailr import BatchJob, Schedule, Service
from localtailr.runtime.daemon import control

daemon = runtime_support.daemon  # the fixture: a real daemon for the test's home


def _kill_daemon(home, info) -> None:
    os.kill(info["pid"], signal.SIGKILL)
    wait_for(lambda: not control.lock_held(home), 30, "the lock to be released")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
@pytest.mark.parametrize("face", ["sdk", "cli"])
def test_stopping_a_service_while_the_daemon_is_down_brings_it_back(
        localtailr_home, daemon, cli, face):
    home = localtailr_home.home
    run = submit(home, "svc", "sleep_forever", type="service")
    pid = wait_state(home, run["run_id"], "running")["pid"]
    _kill_daemon(home, daemon)
    assert not _gone(pid)  # unsupervised now
    if face == "sdk":
        Service("svc", runtime_support.entry).stop()
    else:
        out = cli("job", "stop", "svc")
        assert out.returncode == 0, out.stderr
    info = control.running_info(home)
    assert info is not None and info["pid"] != daemon["pid"]
    ended = wait_state(home, run["run_id"])
    assert ended["state"] == "killed", dict(ended)
    wait_for(lambda: _gone(pid), 30, "the service's process to end")


@pytest.mark.slow
def test_saving_a_scheduled_job_brings_the_daemon_back(localtailr_home, daemon):
    home = localtailr_home.home
    _kill_daemon(home, daemon)
    BatchJob("nightly", runtime_support.entry,
             schedule=Schedule(cron_expression="0 0 3 * * *")).save()
    assert control.running_info(home) is not None
