"""A run just started is sampled at once (its memory and CPU), but its process tree is
first looked for at its second sample: a process
just started has no children yet, and a workflow task has mostly ended by then. A daemon
stepped by hand, a real run."""

from __future__ import annotations

import time

from support.runtime_support import row, submit, wait_for

from localtailr.runtime.daemon import loop
from localtailr.runtime.process.supervised import SAMPLE_EVERY


def test_a_run_just_started_is_sampled_without_a_pass_over_proc(localtailr_home, monkeypatch):
    home = localtailr_home.home
    looked: list[int] = []
    real = loop.child_lists
    monkeypatch.setattr(loop, "child_lists", lambda: looked.append(1) or real())
    run_id = submit(home, "sleeper", "sleep_forever")["run_id"]
    d = loop.Daemon(home)
    try:
        d.start_pending()
        sv = wait_for(lambda: (d.finish_builds(), d.runs.get(run_id))[1], 180, "the launch")
        assert row(home, run_id)["state"] == "running"
        now = time.monotonic()
        d.supervise(now)
        assert sv.peak_rss > 0  # sampled
        assert looked == []  # no look for its children yet
        assert sv.next_tree <= now + SAMPLE_EVERY  # its tree is looked for at the next sample
        d.supervise(sv.next_tree)
        assert looked == [1]
    finally:
        d.shutdown()
    assert row(home, run_id)["state"] == "killed"
