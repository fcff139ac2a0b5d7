"""The per-key build lock (``core.keylock``): exclusive between objects and
processes, with a timeout, and released when its holder is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from localtailr.core.keylock import KeyLock, Timeout


def test_two_locks_on_one_file_exclude_each_other(tmp_path):
    path = str(tmp_path / "k.lock")
    first, second = KeyLock(path), KeyLock(path)
    first.acquire(timeout=0)
    with pytest.raises(Timeout, match="held by another process"):
        second.acquire(timeout=0)
    with pytest.raises(Timeout):
        second.acquire(timeout=0.2)  # waits, then gives up
    with pytest.raises(RuntimeError, match="already held"):
        first.acquire(timeout=0)
    first.release()
    second.acquire(timeout=0)
    second.release()
    second.release()  # releasing twice is harmless


def test_a_killed_holder_releases_the_lock(tmp_path):
    path = str(tmp_path / "k.lock")
    held = tmp_path / "held"
    code = ("import sys, time; from localtailr.core.keylock import KeyLock\n"
            f"KeyLock({path!r}).acquire(timeout=0); open({str(held)!r}, 'w').close(); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        while not held.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        lock = KeyLock(path)
        with pytest.raises(Timeout):
            lock.acquire(timeout=0)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        lock.acquire(timeout=60)  # the kernel dropped the dead holder's lock
        lock.release()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
