"""The peers the bench compares against, from the bench's own environment (``.bench-venv``,
made by ``scripts/bench-peers.sh``, a step of ``make bench``), never the project's.

Each helper returns the peer or raises ``Skip`` whose message is the one-line reason a
row gives when the peer cannot be had here.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("LOCALTAILR_BENCH_VENV", ROOT / ".bench-venv"))


class Skip(Exception):
    """A peer that cannot be run here; the message says why, in one line."""


def python() -> str:
    """The bench environment's interpreter."""
    exe = VENV / "bin" / "python"
    if not exe.exists():
        raise Skip(f"no bench environment at {VENV} (run `make bench` or scripts/bench-peers.sh)")
    return str(exe)


def has(module: str) -> str:
    """The bench interpreter, if it can import ``module``."""
    exe = python()
    probe = subprocess.run([exe, "-c", f"import {module}"], capture_output=True, text=True)
    if probe.returncode:
        raise Skip(f"{module} is not installed in {VENV.name}")
    return exe


def tool(name: str) -> str:
    """A command of the bench environment, else of the PATH."""
    for candidate in (VENV / "bin" / name, shutil.which(name)):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise Skip(f"{name} is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Worker:
    """A long-lived peer process in the bench environment that answers one JSON line for
    each command line: the two sides of a pair can then be measured in turns."""

    def __init__(self, exe: str, script: str, *args: str, env: dict | None = None):
        self.proc = subprocess.Popen([exe, "-c", script, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.call("ping")

    def call(self, *command: object):
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"peer worker exited ({self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


WORKER_LOOP = r"""
import json, sys
for line in sys.stdin:
    cmd, *args = json.loads(line)
    print(json.dumps("pong" if cmd == "ping" else HANDLERS[cmd](*args)), flush=True)
"""


class RedisServer:
    """Debian's redis-server on loopback, in a temporary folder, durable like the WAL store
    (an append-only file, fsync'd every second), stopped by ``close``."""

    def __init__(self):
        exe = shutil.which("redis-server")
        if not exe:
            raise Skip("redis-server is not installed (apt-get install redis-server)")
        self.folder = Path(tempfile.mkdtemp(prefix="bench-redis-"))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [exe, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
             "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
             "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
        self.close()
        raise Skip("redis-server did not start on loopback")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def run_python(code: str, *args: str, env: dict | None = None) -> str:
    """Run ``code`` in the bench interpreter; its stdout."""
    out = subprocess.run([python(), "-c", code, *args], capture_output=True, text=True, env=env,
                         check=False)
    if out.returncode:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed")
    return out.stdout


__all__ = ["Skip", "Worker", "WORKER_LOOP", "RedisServer", "python", "has", "tool", "sys"]
