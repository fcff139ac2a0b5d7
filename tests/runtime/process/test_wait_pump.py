"""The daemon waits for an ended run's log pump to write what it holds
(``Supervised.wait_pump``): it returns once the pump has ended (woken by the pump's end,
not by polling its state), or False when it has not within the time given. Real
processes."""

from __future__ import annotations

import subprocess
import sys
import time

from localtailr.runtime.process.supervised import Supervised


def _run_with_pump(home, pump_pid: int) -> Supervised:
    run_dir = home.run_dir(5)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "logpump").write_text(str(pump_pid))
    return Supervised(home, 5, 1, "batch", pump_pid, time.time(), None, "", None)


def test_wait_pump_returns_when_the_pump_ends_or_says_it_did_not(localtailr_home):
    home = localtailr_home.home
    pump = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)
    sv = _run_with_pump(home, pump.pid)
    try:
        assert sv.wait_pump(timeout=0.2) is False  # still holding its pipe
        pump.stdin.close()  # its writers gone: it ends
        assert sv.wait_pump(timeout=60) is True
    finally:
        pump.kill()
        pump.wait()
        sv.close()
    pump.wait()
    assert _run_with_pump(home, pump.pid).wait_pump(timeout=60) is True  # gone already
