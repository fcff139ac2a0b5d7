"""What a fork server does before it is asked (``runtime/process/forkserver.py``): it loads
the log pump every run starts, so that a forked child does not read and compile it again,
and forks the next run's child ahead. A real fork server and real forked children."""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import threading
import time

import psutil

from localtailr.runtime.process.forkserver_pool import ForkServer, server_environ

JOB = """
import json, sys

def report():
    print(json.dumps({"log_pump_loaded": "_localtailr_logpump" in sys.modules}))
"""


def _ready(server: ForkServer, what, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline and not server.dead, "the fork server did not answer"
        select.select([server.sock], [], [], 0.1)
        server.pump()


def test_a_forked_child_finds_the_log_pump_loaded(tmp_path):
    (tmp_path / "preload_job.py").write_text(JOB)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # no log_cap: this child's bootstrap starts no pump, so it does not load one either
    (run_dir / "launch.json").write_text(json.dumps({
        "run_id": 1, "type": "batch",
        "entrypoint": {"module": "preload_job", "qualname": "report", "sys_path": str(tmp_path)}}))
    server = ForkServer(sys.executable, server_environ(str(tmp_path), dict(os.environ)),
                        tmp_path / "server.log", "batch")
    try:
        _ready(server, lambda: server.ready)
        pid, _ = server.fork(run_dir, dict(os.environ), run_dir, run_dir / "stdout",
                          run_dir / "stderr")
        _ready(server, lambda: pid in server.exits)
        assert server.exits[pid] == 0, (run_dir / "stderr").read_text()
    finally:
        server.close()
    assert json.loads((run_dir / "stdout").read_text()) == {"log_pump_loaded": True}


def _spare(server: ForkServer) -> int:
    """The spare child the server forked ahead and handed to this side, once it has."""
    _ready(server, lambda: server.spare is not None)
    pid = server.spare[0]
    assert psutil.Process(pid).ppid() == server.pid
    return pid


def _run_dir(tmp_path, name: str):
    run_dir = tmp_path / name
    run_dir.mkdir()
    (run_dir / "launch.json").write_text(json.dumps({
        "run_id": 1, "type": "batch",
        "entrypoint": {"module": "preload_job", "qualname": "report", "sys_path": str(tmp_path)}}))
    return run_dir


def test_a_run_is_given_to_the_child_forked_ahead_and_an_unused_one_ends(tmp_path):
    """The next run's child is forked before it is asked for and handed to the daemon's
    side, which gives it the run directly; it runs it (its exit reported). A spare that
    dies unused is dropped and the next run is forked by the server; when the server goes,
    its spare goes too."""
    (tmp_path / "preload_job.py").write_text(JOB)
    server = ForkServer(sys.executable, server_environ(str(tmp_path), dict(os.environ)),
                        tmp_path / "server.log", "batch")
    try:
        _ready(server, lambda: server.ready)
        spare = _spare(server)
        first = _run_dir(tmp_path, "first")
        before = time.monotonic()
        pid, since = server.fork(first, dict(os.environ), first, first / "stdout",
                                 first / "stderr")
        assert pid == spare and since is not None and since < before
        _ready(server, lambda: pid in server.exits)
        assert server.exits[pid] == 0, (first / "stderr").read_text()
        assert json.loads((first / "stdout").read_text()) == {"log_pump_loaded": True}

        unused = _spare(server)
        os.kill(unused, signal.SIGKILL)
        _ready(server, lambda: not psutil.pid_exists(unused)
               or psutil.Process(unused).status() == psutil.STATUS_ZOMBIE)
        second = _run_dir(tmp_path, "second")
        pid2, _ = server.fork(second, dict(os.environ), second, second / "stdout",
                              second / "stderr")
        assert pid2 != unused
        _ready(server, lambda: pid2 in server.exits)
        assert server.exits[pid2] == 0 and unused not in server.exits
        last = _spare(server)
    finally:
        server.close()
    deadline = time.monotonic() + 30
    while psutil.pid_exists(last) and psutil.Process(last).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the spare outlived its server"
        time.sleep(0.02)


def test_a_spare_found_dead_when_given_a_run_is_not_reported_as_a_run(tmp_path):
    """The spare dies while its server is stopped, so its exit comes only after the run it
    was to take has been asked of the server: that late exit belongs to no run."""
    (tmp_path / "preload_job.py").write_text(JOB)
    server = ForkServer(sys.executable, server_environ(str(tmp_path), dict(os.environ)),
                        tmp_path / "server.log", "batch")
    resume = threading.Timer(0.5, os.kill, (server.pid, signal.SIGCONT))
    try:
        _ready(server, lambda: server.ready)
        unused = _spare(server)
        os.kill(server.pid, signal.SIGSTOP)  # it cannot report its child's death for now
        os.kill(unused, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while psutil.Process(unused).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the spare did not die"
            time.sleep(0.01)
        resume.start()  # while fork() below waits for the server's answer
        run = _run_dir(tmp_path, "run")
        pid, _ = server.fork(run, dict(os.environ), run, run / "stdout", run / "stderr")
        assert pid != unused
        _ready(server, lambda: pid in server.exits)  # the spare's exit was heard before
        assert server.exits[pid] == 0, (run / "stderr").read_text()
        assert unused not in server.exits
    finally:
        resume.cancel()
        os.kill(server.pid, signal.SIGCONT)
        server.close()
