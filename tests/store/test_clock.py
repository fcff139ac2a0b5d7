"""The schedules' clock: real time unless a test moves it, seen across processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import pytest

from localtailr.core.home import Home
from localtailr.store.clock import Clock, now

AT = datetime(2024, 3, 10, 6, 59, 59, tzinfo=UTC)


def test_real_time_by_default(tmp_path):
    c = Clock(tmp_path)
    before = time.time()
    assert before <= c.now() <= time.time()
    assert not c.frozen


def test_freeze_advance_reset(tmp_path):
    c = Clock(Home(tmp_path))
    assert c.freeze(AT) == AT.timestamp()
    assert c.now() == AT.timestamp()
    assert c.frozen
    assert c.advance(1) == AT.timestamp() + 1
    assert c.utcnow() == datetime(2024, 3, 10, 7, tzinfo=UTC)
    c.reset()
    assert abs(c.now() - time.time()) < 60
    c.reset()  # twice is fine


def test_offset_keeps_time_moving(tmp_path):
    c = Clock(tmp_path)
    c.advance(86400)
    assert json.loads((tmp_path / "clock").read_text()) == {"offset": 86400.0}
    assert c.now() - time.time() == pytest.approx(86400, abs=60)
    c.advance(60)
    assert json.loads((tmp_path / "clock").read_text()) == {"offset": 86460.0}


def test_another_process_sees_the_change(tmp_path):
    """The daemon reads the file; a test process writes it."""
    reader = Clock(tmp_path)
    assert not reader.frozen
    code = (
        "import sys; from localtailr.store.clock import Clock; "
        "Clock(sys.argv[1]).freeze(1700000000.0); Clock(sys.argv[1]).advance(5)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    assert reader.now() == 1700000005.0
    code = "import sys; from localtailr.store.clock import Clock; print(Clock(sys.argv[1]).now())"
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], check=True, capture_output=True, text=True
    )
    assert float(out.stdout) == 1700000005.0


def test_each_change_is_seen_even_within_one_mtime_tick(tmp_path):
    a, b = Clock(tmp_path), Clock(tmp_path)
    a.freeze(100.0)
    assert b.now() == 100.0
    for i in range(1, 20):
        a.advance(1)
        assert b.now() == 100.0 + i
    a.advance(1)  # two quick writes the reader does not see in between
    a.advance(1)
    assert b.now() == 121.0


def test_wait_returns_early_when_the_clock_moves(tmp_path):
    c = Clock(tmp_path)
    c.freeze(AT)
    threading.Timer(0.1, Clock(tmp_path).advance, args=(3600,)).start()
    assert c.wait(60) is True
    assert c.now() == AT.timestamp() + 3600
    assert c.wait(0.05) is False


def test_module_now_uses_the_current_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALTAILR_HOME", str(tmp_path))
    Clock(tmp_path).freeze(42.0)
    assert now() == 42.0
    assert now(tmp_path) == 42.0


def test_bad_input(tmp_path):
    c = Clock(tmp_path)
    with pytest.raises(ValueError, match="aware"):
        c.freeze(datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="seconds"):
        c.advance(-1)
    with pytest.raises(ValueError, match="seconds"):
        c.advance("1")
    (tmp_path / "clock").write_text("not json")
    with pytest.raises(ValueError, match="delete it"):
        c.now()
    (tmp_path / "clock").write_text('{"speed": 2}')
    with pytest.raises(ValueError, match="expected"):
        c.now()
