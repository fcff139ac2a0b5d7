"""What an idle daemon does between events: its blob-gc thread sleeps until a collection is
due (or the daemon stops), instead of waking ten times a second to look; its periodic pass
polls no run whose end a pidfd reports; its web thread sleeps until a request;
its heartbeats are written every few seconds."""

from __future__ import annotations

import http.client
import os
import select
import socketserver
import subprocess
import sys
import threading

import psutil

from localtailr.platform import health
from localtailr.runtime.daemon import hosting, loop
from localtailr.runtime.process.supervised import Supervised
from localtailr.web import server as web_server


def test_blob_gc_thread_wakes_once_a_collection_and_at_stop(localtailr_home, monkeypatch):
    monkeypatch.setenv("LOCALTAILR_GC_EVERY", "3600")
    collected = threading.Event()
    calls, sleeps = [], []
    monkeypatch.setattr(loop.blob_gc, "collect",
                        lambda ctx, grace: calls.append(1) or collected.set() or
                        {"bytes_freed": 0, "versions_dropped": 0})
    monkeypatch.setattr(loop.time, "sleep", lambda s: sleeps.append(s))
    daemon = loop.Daemon(localtailr_home.home)
    thread = threading.Thread(target=daemon.collect_garbage, daemon=True)
    thread.start()
    assert collected.wait(60)
    daemon.stopped.set()  # what the daemon's stop does
    thread.join(60)
    assert not thread.is_alive()
    assert calls == [1] and sleeps == []  # no polling between collections


def _sleeper(home, run_id: int) -> tuple[subprocess.Popen, Supervised]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                            start_new_session=True)
    sv = Supervised(home, run_id, run_id, "service", proc.pid,
                    psutil.Process(proc.pid).create_time(), None, "", None, proc=proc)
    sv.next_sample = sv.next_tree = float("inf")  # this test counts polls, not samples
    return proc, sv


def test_the_periodic_pass_polls_only_runs_no_pidfd_watches(localtailr_home, monkeypatch):
    """A run whose pidfd the loop selects on is looked at when the kernel says it ended,
    not polled at every periodic pass; a run without a pidfd still is."""
    daemon = loop.Daemon(localtailr_home.home)
    procs = []
    try:
        for run_id in (1, 2):
            proc, sv = _sleeper(localtailr_home.home, run_id)
            procs.append(proc)
            daemon.runs[run_id] = sv
        unwatched = daemon.runs[2]
        os.close(unwatched.pidfd)
        unwatched.pidfd = None  # as where pidfd_open is not available
        assert daemon.runs[1].watch_fd is not None and unwatched.watch_fd is None
        polled: list[int] = []
        real_poll = Supervised.poll
        monkeypatch.setattr(Supervised, "poll", lambda sv: polled.append(sv.run_id) or real_poll(sv))
        for _ in range(3):
            daemon.next_periodic = 0.0  # each step a periodic pass
            daemon.step(False, set())
        assert polled == [2, 2, 2]
        polled.clear()
        procs[0].kill()
        ready = select.select([daemon.runs[1].watch_fd], [], [], 60)[0]
        daemon.step(False, set(ready))  # its pidfd readable: looked at, and ended
        assert 1 in polled and 1 not in daemon.runs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        for sv in list(daemon.runs.values()):
            sv.close()
        daemon.runs.clear()
        daemon.shutdown()


def test_the_web_thread_sleeps_until_a_request_and_stops(localtailr_home, monkeypatch):
    """The daemon's web server waits for a connection with no timeout (werkzeug's default
    wakes it twice a second to look for a stop); ``stop_web`` still stops it."""
    timeouts: list = []

    class Counting(socketserver._ServerSelector):  # type: ignore[name-defined]
        def select(self, timeout=None):
            timeouts.append(timeout)
            return super().select(timeout)

    monkeypatch.setattr(socketserver, "_ServerSelector", Counting)
    server = hosting.start_web(localtailr_home.home, 0, web_server.serve)
    thread = next(t for t in threading.enumerate() if t.name == "web")
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
    conn.request("GET", "/api/health")
    assert conn.getresponse().status in (200, 401, 403)
    conn.close()
    hosting.stop_web(server)
    thread.join(30)
    assert not thread.is_alive()
    assert timeouts and set(timeouts) == {None}


def test_heartbeats_are_written_every_few_seconds_not_every_pass(localtailr_home, monkeypatch):
    """Each heartbeat is a write transaction: written every BEAT_EVERY seconds (far inside
    the staleness limit), not at every once-a-second pass."""
    clock = [1000.0]
    monkeypatch.setattr(loop.time, "monotonic", lambda: clock[0])
    writes: list[float] = []
    monkeypatch.setattr(loop.metrics, "write_heartbeats", lambda home, beats: writes.append(clock[0]))
    daemon = loop.Daemon(localtailr_home.home)
    try:
        for _ in range(20):  # 20 s of once-a-second passes
            daemon.step(False, set())
            clock[0] += 1.0
        assert 2 <= len(writes) <= 20 // 4  # at most one pass in four writes
        assert writes[0] == 1000.0  # the first at once
        assert max(b - a for a, b in zip(writes, writes[1:])) <= loop.BEAT_EVERY < health.STALE
    finally:
        daemon.shutdown()
