"""Issue 9: no acknowledged secret is lost to a key rotation, with writers and rotators in
concurrent processes, and with rotators killed (-9) half way."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localtailr import Secrets
from localtailr.platform import kv
from localtailr.platform.context import context

WORKERS = str(Path(__file__).resolve().parents[1] / "support" / "secret_workers.py")


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, WORKERS, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def wait_lines(path: Path, n: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while len(lines(path)) < n:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"{path} has fewer than {n} lines"
        time.sleep(0.01)


def check_every_acknowledged_value(tmp_path: Path, writers: int, static: dict) -> int:
    """Each writer's secret holds its last acknowledged value; a further rotation works."""
    secrets = Secrets()
    for w in range(writers):
        acked = lines(tmp_path / f"ack{w}")
        assert acked, f"writer {w} acknowledged nothing"
        assert secrets.get(f"w{w}") == acked[-1]
    for key, value in static.items():
        assert secrets.get(key) == value
    n = kv.rotate_key(context())
    assert n == writers + len(static)
    assert len(Secrets().ls()) == n
    return n


@pytest.mark.slow
@pytest.mark.parametrize("rotators", [1, 3])
def test_secrets_put_during_concurrent_rotations_stay_readable(localtailr_home, tmp_path,
                                                               rotators):
    writers, puts = 6, 150
    static = {f"static{i}": f"value-{i}" for i in range(5)}
    for key, value in static.items():
        Secrets().put(key, value)
    stop = tmp_path / "stop"
    rotating = [spawn("rotate", 0, tmp_path / f"rot{r}", stop) for r in range(rotators)]
    for r in range(rotators):
        wait_lines(tmp_path / f"rot{r}", 1, rotating[r])
    finish([spawn("write", f"w{w}", puts, tmp_path / f"ack{w}") for w in range(writers)])
    stop.touch()  # rotators rotated all along the writes; now they end
    finish(rotating)
    rotations = sum(len(lines(tmp_path / f"rot{r}")) for r in range(rotators))
    print(f"{writers} writers x {puts} puts, {rotators} rotators: {rotations} rotations")
    check_every_acknowledged_value(tmp_path, writers, static)
    # every old key was dropped once no secret used it
    assert len(localtailr_home.home.key_file.read_text().split()) == 1


@pytest.mark.slow
def test_rotators_killed_half_way_lose_nothing(localtailr_home, tmp_path):
    writers, puts, kills = 3, 80, 6
    static = {"db_password": "hunter2", "api_token": "t0k3n"}
    for key, value in static.items():
        Secrets().put(key, value)
    procs = [spawn("write", f"w{w}", puts, tmp_path / f"ack{w}") for w in range(writers)]
    rng = random.Random(9)
    for k in range(kills):
        done = tmp_path / f"rot{k}"
        rotator = spawn("rotate", 0, done)  # rotates until killed
        wait_lines(done, 1 + k % 3, rotator)
        time.sleep(rng.uniform(0, 0.05))  # a random moment, inside a rotation or between two
        os.kill(rotator.pid, signal.SIGKILL)
        rotator.wait(timeout=60)
    finish(procs)
    check_every_acknowledged_value(tmp_path, writers, static)
