"""Log rotation loses no line: the writer is held stopped while its log is copied and
emptied. A real writer process, rotated as fast as it writes."""

from __future__ import annotations

import signal
import subprocess
import sys

import psutil

from localtailr.runtime.process import supervised

LINES = 100_000


def test_rotation_while_writing_loses_no_line(localtailr_home):
    home = localtailr_home.home
    run_dir = home.run_dir(1)
    run_dir.mkdir(parents=True)
    script = (f"import sys\nfor i in range({LINES}):\n"
              "    sys.stdout.write(f'{i}\\n'); sys.stdout.flush()\n")
    with open(run_dir / "stdout", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=out,
                                start_new_session=True)
    sv = supervised.Supervised(home, 1, 1, "batch", proc.pid,
                               psutil.Process(proc.pid).create_time(), None, "", None, proc=proc)
    kept, rotations = [], 0
    try:
        while proc.poll() is None:
            if sv.rotate_logs(cap=20_000):
                rotations += 1
                kept.append((run_dir / "stdout.1").read_text())
    finally:
        proc.kill()
        proc.wait()
        sv.close()
    kept.append((run_dir / "stdout").read_text())
    assert rotations >= 2
    assert "".join(kept).split() == [str(i) for i in range(LINES)]
    assert proc.returncode == 0  # continued after every rotation, ran to its end


def test_rotation_of_a_throttled_run_leaves_it_stopped(localtailr_home):
    home = localtailr_home.home
    run_dir = home.run_dir(2)
    run_dir.mkdir(parents=True)
    (run_dir / "stdout").write_bytes(b"x\n" * 2000)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            start_new_session=True)
    sv = supervised.Supervised(home, 2, 1, "batch", proc.pid,
                               psutil.Process(proc.pid).create_time(), None, "", 0.5, proc=proc)
    try:
        sv.signal(signal.SIGSTOP)
        sv.paused_until = 1e18  # held by the throttle
        assert sv.rotate_logs(cap=1000)
        assert (run_dir / "stdout").stat().st_size == 0
        assert (run_dir / "stdout.1").stat().st_size == 4000
        assert sv._stopped(5.0)  # the throttle's stop is kept
    finally:
        proc.kill()
        proc.wait()
        sv.close()
