"""Runs under a real daemon: batch jobs, bad input, limits, logs. Real processes only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psutil
from support import runtime_support
from support.runtime_support import events, read, runs_of, submit, wait_for, wait_state

from localtailr.runtime.process import launch, supervised

NO_LIMIT = {"memory": "1g", "cpu": 2.0}

daemon = runtime_support.daemon  # the fixture: a real daemon for the test's home


def test_batch_job_succeeds_with_the_env_contract(localtailr_home, daemon):
    home = localtailr_home.home
    run = submit(home, "Env Dump - alice", "env_dump", params={"rundate": "2024-05-01"},
                 env_vars={"GREETING": "hi"})
    done = wait_state(home, run["run_id"])
    assert done["state"] == "succeeded", done["reason"]
    assert done["exit_code"] == 0 and done["reason"] == "exit code 0"
    env = json.loads(read(home, run["run_id"]).strip().splitlines()[-1])
    assert env["DATATAILR_JOB_NAME"] == "env-dump-alice"
    assert env["DATATAILR_JOB_TYPE"] == "batch"
    assert env["DATATAILR_JOB_ENVIRONMENT"] == "dev"
    assert env["DATATAILR_RUN_ID"] == env["LOCALTAILR_RUN_ID"] == str(run["run_id"])
    assert env["DATATAILR_JOB_VERSION"] == "1"
    assert env["DATATAILR_BATCH_ARG_RUNDATE"] == "2024-05-01"
    assert env["LOCALTAILR_HOME"] == str(home.root)
    assert env["LOCALTAILR_USER"] == "root"
    assert env["GREETING"] == "hi"
    assert "PORT" not in env
    states = [s for s, _ in events(home, run["run_id"])]
    assert states == ["pending", "building", "running", "succeeded"]


def test_import_failure_names_the_module(localtailr_home, daemon):
    from localtailr.platform import jobs
    from localtailr.platform.context import context

    home = localtailr_home.home
    missing = {"module": "no_such_module_xyz", "qualname": "main", "sys_path": str(home.root),
               "file": None, "kind": "module"}
    run = jobs.run(context(home), {"name": "broken", "type": "batch", "entrypoint": missing,
                                   "image": {"python_version": "auto"}})
    done = wait_state(home, run["run_id"])
    assert done["state"] == "failed"
    assert "no_such_module_xyz" in done["reason"] and "ModuleNotFoundError" in done["reason"]


def test_exception_and_exit_code_are_the_reason(localtailr_home, daemon):
    home = localtailr_home.home
    a = submit(home, "fails", "fail_now")
    b = submit(home, "exits", "exit_at_once")
    fa, fb = wait_state(home, a["run_id"]), wait_state(home, b["run_id"])
    assert fa["state"] == "failed" and fa["exit_code"] == 1
    assert "ValueError: bad input 42" in fa["reason"]
    assert "Traceback" in read(home, a["run_id"], "stderr")
    assert fb["state"] == "failed" and fb["exit_code"] == 3 and fb["reason"].startswith("exit code 3")


def test_unknown_run_as_user_fails_with_reason(localtailr_home, daemon):
    from support.runtime_support import entry

    from localtailr import store
    from localtailr.platform import jobs
    from localtailr.platform.context import context

    home = localtailr_home.home
    conn = store.connection(home)
    conn.execute("INSERT INTO users (name, created_at) VALUES ('ghost', 0)")
    job = jobs.save(context(home), {"name": "as-ghost", "type": "batch", "entrypoint": entry("hello"),
                                    "run_as": "ghost", "image": {"python_version": "auto"}})
    conn.execute("DELETE FROM users WHERE name = 'ghost'")  # gone before the run starts
    job_id = conn.execute("SELECT job_id FROM jobs WHERE name = 'as-ghost'").fetchone()[0]
    rid = conn.execute("INSERT INTO runs (job_id, version, state, run_as, environment, created_at) "
                       "VALUES (?, ?, 'pending', 0, 'dev', 0)", (job_id, job["version"])).lastrowid
    jobs.notify(home)
    done = wait_state(home, rid)
    assert done["state"] == "failed"
    assert "unknown run_as user 'ghost'" in done["reason"]


def test_memory_limit_kills_the_tree_with_the_peak(localtailr_home, daemon):
    home = localtailr_home.home
    run = submit(home, "hog", "eat_memory", resources={"memory": "128m", "cpu": 2.0})
    done = wait_state(home, run["run_id"])
    assert done["state"] == "killed"
    assert done["reason"].startswith("killed: memory limit 128m exceeded (peak ")
    assert done["peak_rss"] > 128 * 1024 * 1024
    assert not psutil.pid_exists(done["pid"]) or psutil.Process(done["pid"]).status() == "zombie"


def test_memory_of_grandchildren_counts(localtailr_home, daemon):
    home = localtailr_home.home
    run = submit(home, "hog-child", "eat_memory_in_child", resources={"memory": "128m", "cpu": 2.0})
    done = wait_state(home, run["run_id"])
    assert done["state"] == "killed" and "memory limit 128m exceeded" in done["reason"]


def test_cpu_throttle_holds_a_busy_loop(localtailr_home, daemon):
    home = localtailr_home.home
    run = submit(home, "spin", "busy", type="service", resources={"memory": "256m", "cpu": 0.5})
    r = wait_state(home, run["run_id"], "running")
    proc = psutil.Process(r["pid"])
    wait_for(lambda: sum(proc.cpu_times()[:2]) > 0.3, 30, "the loop to start")
    before, t0 = sum(proc.cpu_times()[:2]), psutil.time.monotonic()
    wait_for(lambda: psutil.time.monotonic() - t0 >= 5.0, 30, "5 s")
    used = sum(proc.cpu_times()[:2]) - before
    share = used / (psutil.time.monotonic() - t0)
    assert share <= 0.6, f"a cpu=0.5 busy loop used {share:.2f} of a core"
    assert share > 0.2  # throttled, not frozen


def test_forked_grandchildren_are_not_left_behind(localtailr_home, daemon):
    home = localtailr_home.home
    run = submit(home, "forker", "fork_and_exit")
    done = wait_state(home, run["run_id"])
    assert done["state"] == "succeeded"
    pids = [int(p) for p in read(home, run["run_id"]).split()[1:3]]
    wait_for(lambda: not any(_alive(p) for p in pids), 30, "grandchildren to be gone")


def test_logs_rotate_over_the_cap(tmp_path):
    log = tmp_path / "stdout"
    log.write_bytes(b"x" * 2048)
    assert supervised.rotate(log, cap=1024)
    assert log.stat().st_size == 0 and (tmp_path / "stdout.1").stat().st_size == 2048
    assert not supervised.rotate(log, cap=1024)


def test_bootstrap_runs_by_path_without_importing_localtailr(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (tmp_path / "mod_x.py").write_text("import sys\ndef main():\n"
                                       "    print(sorted(m for m in sys.modules if m.startswith('localtailr')))\n")
    (run_dir / "launch.json").write_text(json.dumps({
        "run_id": 1, "type": "batch", "entrypoint": {"module": "mod_x", "qualname": "main",
                                                     "sys_path": str(tmp_path), "kind": "module"}}))
    out = subprocess.run([sys.executable, launch.BOOTSTRAP, str(run_dir)], capture_output=True,
                         text=True, cwd=run_dir, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert (run_dir / "exit").read_text() == "0"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_stop_request_kills_even_a_job_that_ignores_sigterm(localtailr_home, daemon):
    from localtailr.platform import jobs
    from localtailr.platform.context import context

    home = localtailr_home.home
    run = submit(home, "stubborn", "ignore_sigterm", type="service")
    r = wait_state(home, run["run_id"], "running")
    wait_for(lambda: "ignoring" in read(home, run["run_id"]), 30, "the handler")
    jobs.stop(context(home), "stubborn")
    done = wait_state(home, run["run_id"])
    assert done["state"] == "killed" and done["reason"] == "stopped by root"
    assert not _alive(r["pid"])
    assert len(runs_of(home, "stubborn")) == 1  # stopped for good: not restarted


def test_down_leaves_nothing_behind(localtailr_home, daemon):
    from localtailr.runtime.daemon import control

    home = localtailr_home.home
    a = submit(home, "svc-a", "sleep_forever", type="service")
    b = submit(home, "svc-b", "ignore_sigterm", type="service")
    pids = [wait_state(home, r["run_id"], "running")["pid"] for r in (a, b)]
    assert control.stop(home)
    assert not any(_alive(p) for p in pids)
    assert control.running_info(home) is None
    for r in (a, b):
        assert wait_state(home, r["run_id"])["state"] == "killed"
    assert not [p for p in psutil.process_iter(["pid"]) if _in_home(p, home)]


def _in_home(proc, home) -> bool:
    try:
        env = proc.environ()
    except psutil.Error:
        return False
    return env.get("LOCALTAILR_HOME") == str(home.root) and "LOCALTAILR_RUN_ID" in env and proc.pid != os.getpid()


def test_signal_is_named_in_the_reason(localtailr_home, daemon):
    home = localtailr_home.home
    run = submit(home, "victim", "sleep_forever")
    r = wait_state(home, run["run_id"], "running")
    os.kill(r["pid"], signal.SIGKILL)
    done = wait_state(home, run["run_id"])
    assert done["state"] == "failed" and "SIGKILL" in done["reason"]


def test_failure_reason_is_the_jobs_own_last_line_not_the_build_progress(tmp_path):
    from localtailr.runtime.process.launch import failure_reason

    (tmp_path / "stderr").write_text("localtailr: image 7e4e04f06fd1: ready in 0.0 s (0.0 MB)\n")
    assert failure_reason(tmp_path, -9) == "killed by signal SIGKILL"
    with open(tmp_path / "stderr", "a") as f:
        f.write("Traceback ...\nValueError: bad row 42\n")
    assert failure_reason(tmp_path, 1) == "exit code 1: ValueError: bad row 42"
