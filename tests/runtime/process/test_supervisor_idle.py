"""An idle run costs the daemon little: it is sampled less often the longer it stays idle
(on a grid that idle runs share, so one wake-up samples them all), and its metrics give
a row only when a figure changed (or once a minute). A real sleeping process; the sample
times are given, not measured."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from localtailr.runtime.process import procfs, supervised


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


def test_a_sample_reads_each_members_proc_files_once(sleeper, monkeypatch):
    """Memory and CPU time from one read each of a member's /proc stat and statm, without
    file objects (an open, a read, a close), the figures psutil gives."""
    from localtailr.runtime.process import procfs

    opened = []
    real_open = procfs.os.open
    monkeypatch.setattr(procfs.os, "open", lambda path, *a: opened.append(path) or real_open(path, *a))
    sleeper.sample(1000.0, None)
    assert sorted(opened) == [f"/proc/{sleeper.pid}/stat", f"/proc/{sleeper.pid}/statm"]
    monkeypatch.undo()
    cpu, rss = procfs.usage(sleeper.pid)
    info = psutil.Process(sleeper.pid)
    assert rss == info.memory_info().rss  # a sleeper: its memory no longer moves
    assert abs(cpu - sum(info.cpu_times()[:2])) <= 0.02
    assert sleeper.last_rss == rss
    assert procfs.usage(2 ** 22 + 1) == (0.0, 0)  # no such process


def test_same_process_and_create_time_agree_with_psutil(sleeper):
    from localtailr.runtime.process import procfs

    created = psutil.Process(sleeper.pid).create_time()
    assert procfs.create_time(sleeper.pid) == pytest.approx(created, abs=1e-6)
    assert procfs.same_process(sleeper.pid, created)
    assert not procfs.same_process(sleeper.pid, created - 5)  # a reused pid
    assert not procfs.same_process(2 ** 22 + 1, created) and not procfs.same_process(None, 1.0)
    sleeper.proc.kill()
    sleeper.proc.wait()
    assert not procfs.same_process(sleeper.pid, created)


def test_idle_samples_share_the_daemons_once_a_second_wake_up(sleeper):
    """An idle run's samples fall on the grid of the daemon's periodic pass (``on_grid`` of
    a second): one wake-up a second does both, and an idle run is seen at least once a
    second (its memory limit too)."""
    assert supervised.IDLE_SAMPLE_MAX == 1.0
    sleeper.idle, sleeper.state, sleeper.idle_streak = True, "running", 10
    for now in (1000.25, 1000.5, 1000.999):
        assert sleeper.next_sample_at(now) == supervised.on_grid(now, 1.0) == 1001.0
    sleeper.idle_streak = 1  # newly idle: every half second, on the same grid
    assert sleeper.next_sample_at(1000.25) == 1000.5 and sleeper.next_sample_at(1000.5) == 1001.0


def test_idle_runs_rescan_their_trees_together(sleeper):
    """Idle runs rescan their trees at the points of a shared grid: runs sampled in one
    wake-up rescan in it together, with one scan of /proc, not each at its own time."""
    sleeper.idle, sleeper.state = True, "running"
    a, b = sleeper.next_tree_at(1001.0), sleeper.next_tree_at(1007.5)
    assert a == b and 1007.5 < a <= 1001.0 + supervised.IDLE_TREE_EVERY
    sleeper.idle = False  # busy: its own interval, from now
    assert sleeper.next_tree_at(7.0) == 7.0 + supervised.TREE_EVERY


def test_an_idle_member_costs_one_read_and_growth_is_still_seen(localtailr_home, monkeypatch):
    """A member that has not run since the last sample is read once (its stat: CPU time and
    the approximate RSS), not twice (its statm too); one that then allocates has its exact
    RSS read again at the next sample."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time; print('ready', flush=True);"
                             " sys.stdin.readline(); b = bytearray(64 << 20);"
                             " print('grown', flush=True); time.sleep(600)"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout.readline() == b"ready\n"
        sv = supervised.Supervised(localtailr_home.home, 1, 1, "service", proc.pid,
                                   psutil.Process(proc.pid).create_time(), 1 << 30, "1g", None,
                                   proc=proc)
        exact_reads: list[int] = []
        real = procfs.rss
        monkeypatch.setattr(procfs, "rss", lambda pid: exact_reads.append(pid) or real(pid))
        now = 1000.0
        for _ in range(2):  # until two samples in a row see the same CPU time
            sv.sample(now, None)
            now += 1.0
        before = len(exact_reads)
        sv.sample(now, None)
        sv.sample(now + 1.0, None)
        assert len(exact_reads) == before  # idle: no statm read
        first = sv.last_rss
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"grown\n"
        sv.sample(now + 2.0, None)
        assert len(exact_reads) == before + 1
        assert sv.last_rss >= first + (60 << 20) and sv.last_rss == real(proc.pid)
        sv.close()
    finally:
        proc.kill()
        proc.wait()
