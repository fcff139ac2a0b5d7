"""Audit of issue 4 (runtime): the points no other test showed. Real daemon, real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import audit_jobs, runtime_support
from support.runtime_support import events, read, runs_of, submit, wait_for, wait_state

from localtailr import KV, BatchJob, Environment, Secrets
from localtailr.platform import jobs
from localtailr.platform.context import context
from localtailr.runtime.daemon import control, restart_policy

daemon = runtime_support.daemon  # the fixture: a real daemon for the test's home


@pytest.fixture
def stops_daemon(localtailr_home, monkeypatch):
    """No daemon at the start; whatever one the test starts is stopped at the end."""
    monkeypatch.setenv("LOCALTAILR_STOP_GRACE", "2")
    yield localtailr_home
    control.stop(localtailr_home.home)


def test_a_second_up_says_where_the_first_one_is(stops_daemon, cli):
    assert cli("up", "-d").returncode == 0
    info = control.running_info(stops_daemon.home)
    for args in (("up",), ("up", "-d")):  # foreground and detached alike
        again = cli(*args)
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stdout
        assert f"pid {info['pid']}" in again.stdout and str(stops_daemon.root) in again.stdout
    assert control.running_info(stops_daemon.home)["pid"] == info["pid"]


def test_run_starts_the_daemon_on_demand_with_one_line(stops_daemon, capfd):
    job = BatchJob("On Demand", audit_jobs.read_kv_and_secret, python_version="auto")
    assert control.running_info(stops_daemon.home) is None
    capfd.readouterr()
    job.run()
    info = control.running_info(stops_daemon.home)
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"localtailr daemon running (pid {info['pid']})")
    assert str(stops_daemon.root) in err[0]
    job.run()  # already up: nothing more is said
    assert capfd.readouterr().err == ""


def test_restart_delay_first_at_once_then_doubling_to_the_cap_and_reset_when_stable():
    delays = []
    restarts = 0
    for _ in range(9):
        restarts, delay = restart_policy.restart_delay(restarts, uptime=0.3)
        delays.append(delay)
    assert delays == [0, 1, 2, 4, 8, 16, 30, 30, 30]
    assert restart_policy.BACKOFF_CAP == 30 and restart_policy.STABLE_AFTER == 60
    assert restart_policy.restart_delay(restarts, uptime=59.9) == (10, 30)
    assert restart_policy.restart_delay(restarts, uptime=60.0) == (0, 0)  # stable: reset
    assert restart_policy.restart_delay(0, uptime=1.0) == (1, 0)  # and then as the first time


def test_backoff_is_capped_at_30_s_by_the_real_daemon(localtailr_home, daemon):
    home = localtailr_home.home
    first = submit(home, "Capped Svc", "sleep_forever", type="service")
    pid = wait_state(home, first["run_id"], "running")["pid"]
    # the tenth quick crash in a row: as if nine restarts came before this one
    runtime_support.store.connection(home).execute(
        "UPDATE runs SET restarts = 9 WHERE run_id = ?", (first["run_id"],))
    os.killpg(pid, signal.SIGKILL)
    assert wait_state(home, first["run_id"])["state"] == "failed"
    new = wait_for(lambda: [r for r in runs_of(home, "capped-svc") if r["run_id"] > first["run_id"]],
                   60, "the restart to be queued")[0]
    assert new["trigger"] == "restart" and new["restarts"] == 10
    assert new["scheduled_for"] - new["created_at"] == 30
    looping = [d for s, d in events(home, first["run_id"]) if s == "crash-looping"]
    assert looping and looping[0].startswith("killed by signal SIGKILL; restart 10 in 30s; log tail:")
    assert "localtailr: image" not in looping[0]  # the job's own lines, not the build's
    assert row_state(home, new["run_id"]) == "pending"  # still waiting out its delay
    jobs.stop(context(home), "Capped Svc")
    assert wait_state(home, new["run_id"])["state"] == "killed"


def row_state(home, run_id: int) -> str:
    return runtime_support.row(home, run_id)["state"]


def test_crash_looping_status_shows_last_exit_code_and_log_tail(localtailr_home, daemon, cli):
    home = localtailr_home.home
    submit(home, "Looper", "crash_service", type="service")
    wait_for(lambda: any("crash-looping" in (r["reason"] or "") for r in runs_of(home, "looper")),
             90, "the job to be crash-looping")
    listed = {j["name"]: j for j in jobs.ls(context(home))}
    assert listed["looper"]["status"] == "crash-looping"
    shown = cli("job", "ls")
    line = next(line for line in shown.stdout.splitlines() if line.startswith("looper"))
    assert "crash-looping" in line
    reasons = " ".join(r["reason"] or "" for r in runs_of(home, "looper"))
    assert "exit code 1" in reasons and "RuntimeError: service crashed" in reasons
    detail = [d for r in runs_of(home, "looper") for s, d in events(home, r["run_id"])
              if s == "crash-looping"][0]
    assert "log tail:" in detail and "service crashed" in detail.split("log tail:")[1]
    jobs.stop(context(home), "looper")


def test_logs_follow_a_running_run_with_tail_and_stderr(localtailr_home, daemon, tmp_path):
    home = localtailr_home.home
    mark = tmp_path / "go"
    run = jobs.run(context(home), {
        "name": "Ticker Job", "type": "batch", "image": {"python_version": "auto"},
        "entrypoint": runtime_support.entry("stderr_ticker", "support.audit_jobs"),
        "env_vars": {"MARK_FILE": str(mark)}})
    wait_for(lambda: "e5" in read(home, run["run_id"], "stderr"), 60, "five stderr lines")
    exe = Path(sys.executable).with_name("localtailr")
    follow = subprocess.Popen(
        [str(exe), "logs", "Ticker Job", "--run", str(run["run_id"]), "-f", "--tail", "2", "--stderr"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "LOCALTAILR_HOME": str(home.root)})
    try:
        assert follow.stdout.readline() == "e4\n"
        assert follow.stdout.readline() == "e5\n"
        assert follow.poll() is None  # the run is still going: it keeps following
        mark.write_text("go")
        assert follow.stdout.readline() == "late\n"
        rest, err = follow.communicate(timeout=120)  # ends with the run
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert follow.returncode == 0, err
    assert rest == "" and "out only" not in rest
    assert wait_state(home, run["run_id"])["state"] == "succeeded"


def test_a_child_that_forks_grandchildren_and_exits_is_recorded(localtailr_home, daemon):
    home = localtailr_home.home
    run = submit(home, "forker", "fork_and_exit")
    done = wait_state(home, run["run_id"])
    assert done["state"] == "succeeded"
    assert done["reason"] == "exit code 0; 2 leftover process(es) killed"
    pids = [int(p) for p in read(home, run["run_id"]).split()[1:3]]
    assert not any(os.path.exists(f"/proc/{p}") and _alive(p) for p in pids)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_a_prod_job_reads_the_kv_and_secrets_of_prod(stops_daemon):
    for env, tag in ((Environment.DEV, "dev"), (Environment.PRE, "pre"), (Environment.PROD, "prod")):
        KV(env).put("db", f"{tag}-db")
        Secrets(env).put("pw", f"{tag}-pw")
    job = BatchJob("KV Probe", audit_jobs.read_kv_and_secret, environment=Environment.PROD,
                   python_version="auto")
    job.run()
    done = job.wait(timeout=120)
    assert done["state"] == "succeeded", job.logs(stderr=True)
    assert job.logs().splitlines() == ["prod prod-db prod-pw"]
    dev = BatchJob("KV Probe", audit_jobs.read_kv_and_secret, python_version="auto")
    dev.run()
    assert dev.wait(timeout=120)["state"] == "succeeded", dev.logs(stderr=True)
    assert dev.logs().splitlines() == ["dev dev-db dev-pw"]
