"""What an idle daemon does between events: its blob-gc thread sleeps until a collection is
due (or the daemon stops), instead of waking ten times a second to look."""

from __future__ import annotations

import threading

from localtailr.runtime.daemon import loop


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
