"""An idle run costs the daemon little: it is sampled less often the longer it stays idle
(on a grid that idle runs share, so one wake-up samples them all), and its metrics give
a row only when a figure changed (or once a minute). A real sleeping process; the sample
times are given, not measured."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from localtailr.runtime.process import supervised


@pytest.fixture
def sleeper(localtailr_home):
    proc = subprocess.Popen([sys.executable, "-c", "import time; print('ready', flush=True);"
                             " time.sleep(600)"], stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout.readline() == b"ready\n"  # started: its memory no longer grows
    sv = supervised.Supervised(localtailr_home.home, 1, 1, "service", proc.pid,
                               psutil.Process(proc.pid).create_time(), 1 << 30, "1g", None,
                               proc=proc)
    yield sv
    proc.kill()
    proc.wait()
    sv.close()


def test_idle_runs_are_sampled_less_often_on_a_shared_grid(sleeper):
    now = 1000.0
    intervals = []
    for _ in range(6):
        sleeper.sample(now, None)
        intervals.append(sleeper.sample_interval())
        now += 1.0
    assert intervals[0] == supervised.SAMPLE_EVERY  # the first sample has nothing to compare
    assert intervals[1:] == sorted(intervals[1:]) and intervals[-1] == supervised.IDLE_SAMPLE_MAX
    assert intervals[1] == supervised.IDLE_SAMPLE_EVERY
    due = sleeper.next_sample_at(1234.5)
    assert 1234.5 < due <= 1234.5 + supervised.IDLE_SAMPLE_MAX
    assert (due / supervised.IDLE_SAMPLE_MAX) == pytest.approx(round(due / supervised.IDLE_SAMPLE_MAX))
    sleeper.idle = False  # busy again: the short interval, from now
    assert sleeper.next_sample_at(7.0) == 7.0 + supervised.SAMPLE_EVERY


def test_metric_rows_only_on_change_or_once_a_minute(sleeper):
    now = 1000.0
    rows = []
    for _ in range(40):  # 80 s of an unchanging sleeper, a sample every 2 s
        sleeper.sample(now, None)
        if sleeper.metric(now) is not None:
            rows.append(now)
        now += supervised.METRIC_EVERY
    assert 1 <= len(rows) <= 3  # the first, then one a minute
    sleeper.metric_last = (sleeper.metric_last[0], 0.5, sleeper.metric_last[2])  # a change
    sleeper.sample(now, None)
    assert sleeper.metric(now) is not None
