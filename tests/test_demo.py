"""``make run``: the demo seeds the home, starts the daemon and its page, and Ctrl-C stops all."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests

pytestmark = pytest.mark.slow


def test_make_run_demo_lives_and_stops_cleanly(localtailr_home):
    env = {**os.environ, "LOCALTAILR_HOME": str(localtailr_home.root)}
    proc = subprocess.Popen([sys.executable, "-m", "localtailr.demo"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = None
    seen = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if line.startswith("status page: "):
            url = line.split("status page: ", 1)[1].strip()
            break
    assert url and "?token=" in url, "".join(seen)
    assert "alice" in "".join(seen) and "reports/2026/q1.csv" in "".join(seen)

    session = requests.Session()
    page = session.get(url, timeout=30)
    assert page.status_code == 200 and "localtailr" in page.text
    jobs = session.get(url.split("?")[0].rstrip("/") + "/api/job/ls", timeout=30).json()
    names = {j["name"] for j in jobs}
    assert {"heartbeat", "hello-app", "price-report"} <= names
    types = {j["name"]: j["type"] for j in jobs}
    assert [types[n] for n in ("heartbeat", "hello-app", "price-report")] == ["service", "app", "workflow"]
    assert next(j for j in jobs if j["name"] == "price-report")["next_fire"]  # scheduled
    api = url.split("?")[0].rstrip("/") + "/api/"
    assert {k["key"] for k in session.get(api + "kv/ls", timeout=30).json()} >= {"greeting", "db_url"}
    secrets = session.get(api + "secret/ls", timeout=30).text
    assert "warehouse_password" in secrets and "correct horse" not in secrets
    assert "analysts" in {g["name"] for g in session.get(api + "group/ls", timeout=30).json()}

    daemon_pid = int((localtailr_home.root / "daemon.json").read_text().split('"pid": ')[1].split(",")[0])
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "stopped" in out
    # the daemon has released its lock and is exiting; give the kernel a moment to reap it
    try:
        gone, alive = psutil.wait_procs([psutil.Process(daemon_pid)], timeout=30)
    except psutil.NoSuchProcess:
        alive = []
    assert all(p.status() == psutil.STATUS_ZOMBIE for p in alive)
    left = [p for p in psutil.process_iter(["environ"])
            if (p.info["environ"] or {}).get("LOCALTAILR_HOME") == str(localtailr_home.root)
            and p.pid != os.getpid()]
    assert left == []
