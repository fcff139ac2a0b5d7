"""The reloader sees an entrypoint file change once, and only the watched ones."""

import time

from localtailr.runtime.process.reloader import DEBOUNCE, Reloader


def wait_changed(reloader, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = reloader.changed()
        if got:
            return got
        time.sleep(0.05)
    return set()


def test_a_changed_file_marks_its_job_once(tmp_path):
    app, other = tmp_path / "app.py", tmp_path / "other.py"
    app.write_text("x = 1\n")
    other.write_text("y = 1\n")
    reloader = Reloader()
    try:
        reloader.sync({7: str(app)})
        time.sleep(0.2)
        other.write_text("y = 2\n")  # not watched
        time.sleep(DEBOUNCE * 2)
        assert reloader.changed() == set()
        for i in range(3):  # an editor writing in steps: one restart
            app.write_text(f"x = {i}\n")
        assert wait_changed(reloader) == {7}
        assert reloader.changed() == set()
        reloader.sync({})  # no longer watched
        app.write_text("x = 9\n")
        time.sleep(DEBOUNCE * 2)
        assert reloader.changed() == set()
    finally:
        reloader.close()


def test_an_editor_that_replaces_the_file_is_seen(tmp_path):
    app = tmp_path / "app.py"
    app.write_text("x = 1\n")
    reloader = Reloader()
    try:
        reloader.sync({3: str(app)})
        time.sleep(0.2)
        tmp = tmp_path / ".app.py.swp"
        tmp.write_text("x = 2\n")
        tmp.replace(app)
        assert wait_changed(reloader) == {3}
    finally:
        reloader.close()


def test_a_change_before_the_watch_began_is_caught_by_the_runs_start_time(tmp_path):
    app = tmp_path / "app.py"
    app.write_text("x = 1\n")
    started = app.stat().st_mtime - 5  # the run started before this edit
    reloader = Reloader()
    try:
        reloader.sync({4: str(app)}, {4: started})
        assert wait_changed(reloader) == {4}
        reloader.sync({4: str(app)}, {4: started})  # the same run: reported once
        assert reloader.changed() == set()
        reloader.sync({4: str(app)}, {4: app.stat().st_mtime + 1})  # a fresh run: up to date
        assert reloader.changed() == set()
    finally:
        reloader.close()
