"""Issue 4, logs: a run's stdout/stderr whole, its tail, and followed while it grows
(Pachyderm's get_job_logs with follow and tail), rotation included."""

import threading
import time

import pytest
from support import jobs_entry

from localtailr import BatchJob
from localtailr.core.errors import NotFoundError, PermissionError
from localtailr.platform import jobs, logs
from localtailr.platform.context import context


@pytest.fixture
def run_id(localtailr_home):
    run = jobs.run(context(), BatchJob("Logger", jobs_entry.hello).to_dict())
    localtailr_home.home.run_dir(run["run_id"]).mkdir(parents=True)
    return run["run_id"]


def out(localtailr_home, run_id, name="stdout"):
    return localtailr_home.home.run_dir(run_id) / name


def finish(run_id, state="succeeded"):
    ctx = context()
    ctx.conn.execute("UPDATE runs SET state = ?, reason = 'exit code 0' WHERE run_id = ?", (state, run_id))


def test_read_whole_tail_and_stderr(localtailr_home, run_id):
    out(localtailr_home, run_id).write_text("one\ntwo\nthree\n")
    out(localtailr_home, run_id, "stderr").write_text("oops\n")
    ctx = context()
    assert logs.read(ctx, run_id) == "one\ntwo\nthree\n"
    assert logs.read(ctx, job="Logger", tail=2) == "two\nthree\n"
    assert logs.read(ctx, run_id, tail=0) == ""
    assert logs.read(ctx, run_id, stderr=True) == "oops\n"
    assert BatchJob("Logger", jobs_entry.hello).logs(tail=1) == "three\n"
    with pytest.raises(ValueError, match="invalid tail -1"):
        logs.read(ctx, run_id, tail=-1)


def test_read_includes_the_rotated_file_first(localtailr_home, run_id):
    out(localtailr_home, run_id, "stdout.1").write_text("a\nb\n")
    out(localtailr_home, run_id).write_text("c\n")
    assert logs.read(context(), run_id) == "a\nb\nc\n"
    assert logs.read(context(), run_id, tail=2) == "b\nc\n"


def test_a_run_without_output_yet_reads_empty(localtailr_home, run_id):
    assert logs.read(context(), run_id) == ""


def test_no_runs_and_no_rights(localtailr_home, run_id):
    from localtailr import User

    jobs.save(context(), BatchJob("Quiet", jobs_entry.hello).to_dict())
    with pytest.raises(NotFoundError, match="'quiet' has no runs yet"):
        logs.read(context(), job="quiet")
    User.add("bob")
    with pytest.raises(PermissionError, match="'bob' lacks READ"):
        logs.read(context(user="bob"), run_id)


def test_follow_yields_lines_as_they_are_written_until_the_run_ends(localtailr_home, run_id):
    path = out(localtailr_home, run_id)
    path.write_text("before 1\nbefore 2\n")

    def writer():
        with open(path, "a") as f:
            for i in range(5):
                f.write(f"line {i}\n")
                f.flush()
                time.sleep(0.02)
            f.write("partial")
            f.flush()
            time.sleep(0.05)
            f.write(" end\nlast")
            f.flush()
        finish(run_id)

    lines = logs.follow(context(), run_id, tail=1, poll=0.01, timeout=60)
    got = [next(lines)]  # the tail is read before the writer starts
    thread = threading.Thread(target=writer)
    thread.start()
    got += list(lines)
    thread.join()
    assert got == ["before 2", *(f"line {i}" for i in range(5)), "partial end", "last"]


def test_follow_reads_on_across_a_rotation(localtailr_home, run_id):
    path = out(localtailr_home, run_id)
    path.write_text("a\n")
    seen = []

    def writer():
        while seen != ["a"]:
            time.sleep(0.01)
        with open(path, "a") as f:
            f.write("b\n")
        path.rename(path.with_name("stdout.1"))
        path.write_text("c\n")
        finish(run_id)

    thread = threading.Thread(target=writer)
    thread.start()
    for line in logs.follow(context(), run_id, poll=0.01, timeout=60):
        seen.append(line)
    thread.join()
    assert seen == ["a", "b", "c"]


def test_follow_of_an_ended_run_returns_what_is_there(localtailr_home, run_id):
    out(localtailr_home, run_id).write_text("x\ny\n")
    finish(run_id, "failed")
    assert list(logs.follow(context(), run_id)) == ["x", "y"]


def test_follow_times_out(localtailr_home, run_id):
    with pytest.raises(TimeoutError, match="still running"):
        list(logs.follow(context(), run_id, poll=0.01, timeout=0.1))
