"""What a fork server loads before it forks (``runtime/process/forkserver.py``): the log
pump every run starts, so that a forked child does not read and compile it again. A real
fork server and a real forked child."""

from __future__ import annotations

import json
import os
import select
import sys
import time

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
        pid = server.fork(run_dir, dict(os.environ), run_dir, run_dir / "stdout",
                          run_dir / "stderr")
        _ready(server, lambda: pid in server.exits)
        assert server.exits[pid] == 0, (run_dir / "stderr").read_text()
    finally:
        server.close()
    assert json.loads((run_dir / "stdout").read_text()) == {"log_pump_loaded": True}
