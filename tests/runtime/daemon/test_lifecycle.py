"""The daemon itself: one a home, discovery, wake-up, kill -9 and restart, services that
restart with backoff, the CLI. Real daemons, real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
from support import runtime_support
from support.runtime_support import events, runs_of, submit, wait_for, wait_state

from localtailr import store
from localtailr.core.home import Home
from localtailr.runtime.daemon import control
from localtailr.store import wakeup

daemon = runtime_support.daemon  # the fixture: a real daemon for the test's home


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_one_daemon_a_home_and_its_info(localtailr_home, daemon):
    home = localtailr_home.home
    info = control.running_info(home)
    assert info["pid"] == daemon["pid"] and info["home"] == str(home.root)
    assert set(info) >= {"pid", "pid_create_time", "started_at", "home", "socket", "log", "url",
                         "port", "cpu_limiting"}
    assert info["cpu_limiting"] in ("cgroups v2", "psutil throttle")
    # the daemon's process (localtailr.daemon_main) serves the web face beside its loop
    health = json.loads(urllib.request.urlopen(info["url"] + "api/health", timeout=30).read())
    assert health["daemon"]["pid"] == info["pid"]
    assert control.ensure_running(home, quiet=True)["pid"] == info["pid"]
    second = subprocess.run([sys.executable, "-m", "localtailr.daemon_main", str(home.root)],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1 and f"pid {info['pid']}" in second.stderr
    assert control.running_info(home)["pid"] == info["pid"]


def test_long_home_paths_use_a_hashed_socket(tmp_path):
    home = Home(tmp_path / ("x" * 120))
    path = wakeup.socket_path(home)
    assert len(os.fsencode(path)) <= 100 and path.startswith("/tmp/localtailr-")
    assert wakeup.socket_path(home) == path
    assert not wakeup.notify(home)  # nobody listens: silently nothing
    home.ensure()
    listener = wakeup.Listener(home)
    try:
        assert wakeup.notify(home)
        assert listener.wait(5.0)
    finally:
        listener.close()


def test_daemon_in_a_long_home(tmp_path, monkeypatch):
    from localtailr.pytest_plugin import make_home

    home = make_home(tmp_path / ("deep-" * 20) / "home")
    monkeypatch.setenv("LOCALTAILR_HOME", str(home.root))
    info = control.ensure_running(home, quiet=True)
    try:
        assert info["socket"] == wakeup.socket_path(home) and info["socket"].startswith("/tmp/")
        run = submit(home, "hello", "hello")
        assert wait_state(home, run["run_id"])["state"] == "succeeded"
    finally:
        control.stop(home)
    store.forget(home)


def test_kill_9_then_restart_adopts_marks_lost_and_restarts(localtailr_home, daemon):
    home = localtailr_home.home
    conn = store.connection(home)
    kept = submit(home, "kept", "sleep_forever", type="service")
    doomed = submit(home, "doomed", "sleep_forever", type="service")
    batch = submit(home, "long-batch", "sleep_forever")
    kept_pid = wait_state(home, kept["run_id"], "running")["pid"]
    doomed_pid = wait_state(home, doomed["run_id"], "running")["pid"]
    batch_pid = wait_state(home, batch["run_id"], "running")["pid"]

    os.kill(daemon["pid"], signal.SIGKILL)
    wait_for(lambda: not control.lock_held(home), 30, "the lock to be released")
    assert _alive(kept_pid) and _alive(batch_pid)  # runs outlive their daemon
    os.killpg(doomed_pid, signal.SIGKILL)  # dies while no daemon watches
    wait_for(lambda: not _alive(doomed_pid), 30, "the doomed service to die")

    info = control.ensure_running(home, quiet=True)
    assert info["pid"] != daemon["pid"]
    lost = wait_state(home, doomed["run_id"], ("lost",))
    assert lost["reason"].startswith("lost: process gone while the daemon was down (noticed ")
    assert conn.execute("SELECT state FROM runs WHERE run_id = ?", (kept["run_id"],)).fetchone()[0] == "running"
    assert ("adopted", f"pid {kept_pid}") in events(home, kept["run_id"])
    # the lost service should be running: a new run starts
    new = wait_for(lambda: [r for r in runs_of(home, "doomed") if r["state"] == "running"], 60,
                   "the lost service to be restarted")
    assert new[0]["run_id"] > doomed["run_id"]
    # an adopted run is still supervised: stopping it works, its end is recorded
    os.kill(batch_pid, signal.SIGTERM)
    ended = wait_state(home, batch["run_id"])
    assert ended["state"] == "failed" and "exit code unknown" in ended["reason"]
    control.stop(home)
    assert not _alive(kept_pid)


def test_reused_pid_is_not_adopted(localtailr_home):
    """A run whose pid now belongs to another process (other create time) is lost."""
    home = localtailr_home.home
    run = submit(home, "ghost-run", "hello")
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        store.connection(home).execute(
            "UPDATE runs SET state = 'running', pid = ?, pid_create_time = ? WHERE run_id = ?",
            (stranger.pid, psutil.Process(stranger.pid).create_time() - 100, run["run_id"]))
        control.ensure_running(home, quiet=True)
        try:
            assert wait_state(home, run["run_id"])["state"] == "lost"
            assert stranger.poll() is None  # never touched
        finally:
            control.stop(home)
    finally:
        stranger.kill()
        stranger.wait()


def test_service_restarts_with_backoff_and_is_crash_looping(localtailr_home, daemon):
    from localtailr.platform import jobs
    from localtailr.platform.context import context

    home = localtailr_home.home
    first = submit(home, "crasher", "crash_service", type="service")
    wait_state(home, first["run_id"])
    runs = wait_for(lambda: (r := runs_of(home, "crasher")) and len(r) >= 4 and r, 90,
                    "three restarts")
    assert [r["trigger"] for r in runs[1:4]] == ["restart"] * 3
    assert [r["restarts"] for r in runs[:4]] == [0, 1, 2, 3]
    delays = [r["scheduled_for"] - r["created_at"] for r in runs[1:4]]
    assert delays[0] == 0 and delays[1] == 1 and delays[2] == 2
    looping = wait_for(lambda: [e for r in runs_of(home, "crasher") for e in events(home, r["run_id"])
                                if e[0] == "crash-looping"], 60, "a crash-looping event")
    assert "exit code 1" in looping[0][1] and "service crashed" in looping[0][1]
    assert any("crash-looping" in (r["reason"] or "") for r in runs_of(home, "crasher"))
    jobs.stop(context(home), "crasher")
    wait_for(lambda: all(r["state"] in ("succeeded", "failed", "killed", "lost")
                         for r in runs_of(home, "crasher")), 60, "every run to end")
    count = len(runs_of(home, "crasher"))
    desired = store.connection(home).execute(
        "SELECT desired_state FROM jobs WHERE name = 'crasher'").fetchone()[0]
    assert desired == "stopped"
    assert len(runs_of(home, "crasher")) == count


def test_new_version_of_a_service_replaces_the_running_one(localtailr_home, daemon):
    home = localtailr_home.home
    v1 = submit(home, "svc", "sleep_forever", type="service")
    old = wait_state(home, v1["run_id"], "running")
    submit(home, "svc", "sleep_forever", type="service", env_vars={"V": "2"})
    done = wait_state(home, v1["run_id"])
    assert done["state"] == "killed" and done["reason"].startswith("stopped")
    new = wait_for(lambda: [r for r in runs_of(home, "svc") if r["state"] == "running"], 60,
                   "the new version to run")
    assert new[0]["version"] == 2 and not _alive(old["pid"])


def test_cli_up_status_down(localtailr_home, cli):
    home = localtailr_home.home
    up = cli("up", "-d")
    assert up.returncode == 0, up.stderr
    assert "pid" in up.stdout
    again = cli("up", "-d")
    assert "already running" in again.stdout
    status = cli("status", "--json")
    data = json.loads(status.stdout)
    assert data["running"] and data["cpu_limiting"] in ("cgroups v2", "psutil throttle")
    text = cli("status").stdout
    assert "running, pid" in text and "cpu limit" in text
    down = cli("down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert json.loads(cli("status", "--json").stdout)["running"] is False
    assert not (Path(home.root) / "daemon.json").exists()
