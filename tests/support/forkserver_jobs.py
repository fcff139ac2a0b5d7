"""Jobs and a workflow for tests/test_forkserver.py (run in forked or spawned children)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from localtailr import task, workflow


def identity():
    """Print what the process is: its ids, session, folder, a few variables."""
    try:
        stdin_target = os.readlink("/proc/self/fd/0")
    except OSError:
        stdin_target = None
    print(json.dumps({
        "pid": os.getpid(), "ppid": os.getppid(), "sid": os.getsid(0), "pgid": os.getpgid(0),
        "cwd": os.getcwd(), "stdin": stdin_target, "argv": sys.argv,
        "run_id": os.environ.get("LOCALTAILR_RUN_ID"), "greeting": os.environ.get("GREETING"),
        "job_name": os.environ.get("DATATAILR_JOB_NAME"),
    }))
    print("to stderr", file=sys.stderr)


def exit_five():
    sys.exit(5)


@task()
def wait_for_file(path):
    """Run until ``path`` exists; return what it says."""
    while not os.path.exists(path):
        time.sleep(0.05)
    return Path(path).read_text()


@workflow(name="Forked Waiter")
def waiter(path="/nonexistent"):
    wait_for_file(path)


@task()
def one():
    return 1


@workflow(name="Forked One")
def just_one():
    one()
