"""Issue 9: the daemon stays small — thousands of page and API requests through the real
daemon leave its memory and open descriptors flat."""

import concurrent.futures
import threading
import time
import urllib.request

import psutil
import pytest
from support import web_seed as seed

from localtailr import store
from localtailr.platform.context import context
from localtailr.web import security

RUNS = 10_000
WARM_UP = 300
REQUESTS = 2_000
CLIENTS = 4


def _seed_runs(home, count: int) -> int:
    ctx = context(home, "root", "dev")
    seed.job(ctx, "many")
    seed.job(ctx, "svc", type="service")
    job_id = ctx.conn.execute("SELECT job_id FROM jobs WHERE name = 'many'").fetchone()[0]
    now = time.time()
    states = ("succeeded", "failed", "killed", "succeeded")
    with store.transaction(ctx.conn) as conn:
        conn.executemany(
            "INSERT INTO runs (job_id, version, state, run_as, environment, created_at, started_at,"
            " ended_at, reason) VALUES (?, 1, ?, 0, 'dev', ?, ?, ?, ?)",
            [(job_id, states[i % 4], now - i, now - i, now - i, f"reason {i}") for i in range(count)])
    return conn.execute("SELECT max(run_id) FROM runs").fetchone()[0]


def _footprint(proc: psutil.Process) -> tuple[int, int, int]:
    """(RSS bytes, open descriptors, descriptors on state.db) of the daemon."""
    db = sum(1 for f in proc.open_files() if f.path.endswith("state.db"))
    return proc.memory_info().rss, proc.num_fds(), db


@pytest.mark.slow
def test_thousands_of_requests_leave_the_daemon_flat(localtailr_home):
    home = localtailr_home.home
    last_run = _seed_runs(home, RUNS)
    info = localtailr_home.start_daemon()
    daemon = psutil.Process(info["pid"])
    base = info["url"].rstrip("/")
    headers = {"Authorization": f"Bearer {security.token(home)}"}
    paths = ["/", "/api/job/runs?all=1&limit=50", "/jobs", f"/runs/{last_run}", "/services",
             "/api/job/ls", "/", "/users"]
    failures: list[str] = []
    lock = threading.Lock()

    def get(i: int) -> None:
        path = paths[i % len(paths)]
        try:
            with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers),
                                        timeout=120) as resp:
                resp.read()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            with lock:
                failures.append(f"{path}: {exc}")

    def drive(n: int) -> None:
        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(get, range(n)))

    before = _footprint(daemon)
    drive(WARM_UP)
    warm = _footprint(daemon)
    drive(REQUESTS)
    after = _footprint(daemon)
    print(f"daemon rss/fds/state.db fds: start {before}, after {WARM_UP} requests {warm},"
          f" after {REQUESTS} more {after}")
    assert not failures, failures[:5]
    rss_warm, fds_warm, db_warm = warm
    rss_after, fds_after, db_after = after
    assert rss_after <= rss_warm * 1.2, f"RSS grew from {rss_warm >> 20} to {rss_after >> 20} MiB"
    # SQLite defers closing a descriptor while another connection of the process holds a
    # lock on the file, and reuses it next time: a few more than the clients may stay open.
    assert fds_after <= fds_warm + 2 * CLIENTS, (fds_warm, fds_after)
    assert db_after <= db_warm + 2 * CLIENTS, (db_warm, db_after)
    assert db_after <= 4 * CLIENTS
