"""The status page and listings as the store grows, and the overview under concurrent clients.

- Scaling: the same page (or ``KV().ls()``) in a small home and a large one, measured in
  turns: 1k -> 100k keys (``/kv``, ``KV().ls()`` per key), 1k -> 100k blobs (``/blobs``),
  10k -> 1M runs (``/jobs``, the overview). Target: the large home's time <= 2x the small's
  (``KV().ls()`` lists every key, so its time per key). No ``ANALYZE``: no real home runs it.
- ``KV().ls()`` at 100k keys against the one join query that reads the same keys and ACLs.
- The overview under 8 concurrent clients against a static file of the same app (each
  server in its own process), req/s and p99. Target: >= 0.6x the static file's req/s,
  p99 <= 100 ms. The server keeps a rendered overview while the store, the daemon file and
  the second are unchanged (``web/page_cache.py``), so here it renders about once a second;
  the scaling rows commit before each GET so that every one of them renders.

Homes are seeded with SQL (the rows the service layer writes), not through the API, to
keep the seeding to seconds.
"""

from __future__ import annotations

import http.client
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import interleave, row

SMALL = {"keys": 1_000, "blobs": 1_000, "runs": 10_000}
LARGE = {"keys": 100_000, "blobs": 100_000, "runs": int(os.environ.get("LOCALTAILR_BENCH_RUNS", 1_000_000))}
JOBS = 100
ROUNDS = 15
CLIENTS, CONCURRENT_SECONDS = 8, 5.0
TYPES = ("batch", "batch", "batch", "workflow", "service", "app")
STATES = ("succeeded",) * 8 + ("failed", "killed")
PERMS = ("read", "write", "operate", "access", "promote")


def seed(home, keys: int, blobs: int, runs: int) -> None:
    from localtailr import store
    from localtailr.platform import jobs
    from localtailr.platform.context import context

    ctx = context(home, "root", "dev")
    entry = {"module": "bench_entry", "qualname": "main", "sys_path": None, "file": None, "kind": "module"}
    for i in range(JOBS):
        t = TYPES[i % len(TYPES)]
        jobs.save(ctx, {"name": f"job-{i:03d}", "type": t, "entrypoint": None if t == "workflow" else entry})
    conn, now = ctx.conn, time.time()
    rng = random.Random(6)
    job_ids = [r[0] for r in conn.execute("SELECT job_id FROM jobs")]
    with store.transaction(conn):
        conn.executemany(
            "INSERT INTO kv (environment, key, value, updated_at, updated_by) VALUES ('dev', ?, ?, ?, 0)",
            ((f"config/key-{i:06d}", f"value {i}", now) for i in range(keys)))
        conn.executemany("INSERT INTO acl (resource, permission, principal) VALUES (?, ?, 0)",
                         ((f"kv/dev/config/key-{i:06d}", p) for i in range(keys) for p in PERMS))
        conn.executemany(
            "INSERT INTO blobs (name, size, sha256, updated_at, updated_by) VALUES (?, ?, ?, ?, 0)",
            ((f"data/file-{i:06d}.csv", 100 + i, f"{i:064x}", now) for i in range(blobs)))
        conn.executemany("INSERT INTO acl (resource, permission, principal) VALUES (?, ?, 0)",
                         ((f"blob/data/file-{i:06d}.csv", p) for i in range(blobs) for p in PERMS))

        def run_rows():
            for n in range(runs):
                created = now - (runs - n) * 3
                state = "running" if n >= runs - 10 else rng.choice(STATES)
                yield (rng.choice(job_ids), state, None if state in ("succeeded", "running") else
                       "exit code 1", created, created + 1, None if state == "running" else created + 2)

        conn.executemany(
            "INSERT INTO runs (job_id, version, state, reason, run_as, environment, trigger, params,"
            " created_at, started_at, ended_at, peak_rss, peak_cpu) VALUES"
            " (?, 1, ?, ?, 0, 'dev', 'manual', '{}', ?, ?, ?, 52428800, 12.5)", run_rows())


SERVER = r"""
import sys
from localtailr.core.home import Home
from localtailr.web import server
from pathlib import Path
import logging
logging.getLogger("werkzeug").setLevel(logging.WARNING)
srv = server.serve(Home(Path(sys.argv[1])))
print(srv.server_port, flush=True)
srv.serve_forever()
"""


class Server:
    """The home's web app served by its own process (as the daemon serves it)."""

    def __init__(self, home):
        from localtailr.web import security

        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(home.root)],
                                     stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.touch = sqlite3.connect(home.db_path, isolation_level=None, check_same_thread=False)
        self.headers = {"Authorization": f"Bearer {security.token(home)}",
                        "Host": f"127.0.0.1:{self.port}"}

    def get(self, path: str, fresh: bool = False) -> float:
        """Milliseconds for one GET on a new connection (as a browser's first request);
        ``fresh``: after a commit (untimed), so a page kept by the server is rendered again."""
        if fresh:
            self.touch.execute("INSERT OR REPLACE INTO tags (name, value) VALUES ('bench.touch', ?)",
                               (str(time.time()),))
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request("GET", path, headers=self.headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        if resp.status != 200 or not body:
            raise RuntimeError(f"GET {path}: {resp.status} {body[:200]!r}")
        return (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self.touch.close()
        self.proc.terminate()
        self.proc.wait(30)


def concurrent(server: Server, path: str, seconds: float) -> tuple[float, list[float]]:
    """(requests a second, latencies in ms) of CLIENTS clients requesting ``path`` for ``seconds``."""
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < stop:
            latencies.append(server.get(path))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies) / (time.perf_counter() - started), latencies


def _ls_seconds(home) -> float:
    from localtailr import KV, store

    os.environ["LOCALTAILR_HOME"] = str(home.root)
    try:
        t = time.perf_counter()
        n = len(KV().ls())
        return (time.perf_counter() - t) / n * 1e6  # microseconds a key
    finally:
        os.environ.pop("LOCALTAILR_HOME", None)
        store.forget(home)


def _join_seconds(home) -> float:

    conn = sqlite3.connect(home.db_path)
    t = time.perf_counter()
    rows = conn.execute(
        "SELECT k.key, a.permission, a.principal FROM kv k JOIN acl a ON a.resource = 'kv/dev/' || k.key"
        " WHERE k.environment = 'dev' ORDER BY k.key").fetchall()
    seconds = time.perf_counter() - t
    conn.close()
    return seconds / (len(rows) / len(PERMS)) * 1e6


def run() -> list[dict]:
    from localtailr.core.home import Home

    folder = Path(tempfile.mkdtemp(prefix="localtailr-bench-web-"))
    servers: list[Server] = []
    try:
        homes, seeded = {}, {}
        for name, size in (("small", SMALL), ("large", LARGE)):
            homes[name] = Home(folder / name).ensure()
            t = time.perf_counter()
            seed(homes[name], **size)
            seeded[name] = time.perf_counter() - t
        small, large = Server(homes["small"]), Server(homes["large"])
        servers += [small, large]
        paths = {"/kv page": "/kv?page=3", "/blobs page": "/blobs?page=3", "/jobs page": "/jobs",
                 "overview": "/"}
        for p in [*paths.values(), "/static/style.css"]:  # warm up
            small.get(p), large.get(p)
        out = []
        for name, path in paths.items():
            # each GET renders (the overview is otherwise served from the server's page cache,
            # which the concurrent row measures)
            s, l_ = interleave([lambda p=path: small.get(p, fresh=True), lambda p=path: large.get(p, fresh=True)],
                               ROUNDS)
            what = "keys" if "kv" in path else "blobs" if "blobs" in path else "runs"
            out.append(row(f"{name}, {LARGE[what]:,} vs {SMALL[what]:,} {what}", None, "ms", None,
                           f"{SMALL[what]:,} {what}", target="<= 2x",
                           ok=statistics.median(l_) <= 2 * statistics.median(s), samples=l_,
                           floor_samples=s, note=f"median of {ROUNDS} GETs each, in turns"))
        ls = interleave([lambda: _ls_seconds(homes["small"]), lambda: _ls_seconds(homes["large"]),
                         lambda: _join_seconds(homes["large"])], 5)
        med = statistics.median
        out.append(row(f"KV().ls() per key, {LARGE['keys']:,} vs {SMALL['keys']:,} keys", None, "us",
                       None, f"{SMALL['keys']:,} keys", target="<= 2x",
                       ok=med(ls[1]) <= 2 * med(ls[0]), samples=ls[1], floor_samples=ls[0],
                       note=f"whole listing at {LARGE['keys']:,} keys: {med(ls[1]) * LARGE['keys'] / 1e6:.2f} s"))
        out.append(row(f"KV().ls() at {LARGE['keys']:,} keys", None, "us", None,
                       "one join query (keys + ACL rows)", samples=ls[1], floor_samples=ls[2],
                       note="per key; the SDK builds an ACL of User/Group objects for each"))
        rates = {"overview": [], "static": []}
        lat = {"overview": [], "static": []}
        for i in range(4):
            for name in (("overview", "static") if i % 2 == 0 else ("static", "overview")):
                rate, ms = concurrent(large, "/" if name == "overview" else "/static/style.css",
                                      CONCURRENT_SECONDS)
                rates[name].append(rate)
                lat[name] += ms
        p99 = statistics.quantiles(lat["overview"], n=100)[98]
        ratio = med(rates["overview"]) / med(rates["static"])
        out.append(row(f"overview, {CLIENTS} concurrent clients", None, "req/s", None,
                       "static file, same app", target=">= 0.6x, p99 <= 100 ms",
                       ok=ratio >= 0.6 and p99 <= 100, samples=rates["overview"],
                       floor_samples=rates["static"],
                       note=f"p99 {p99:.0f} ms (static {statistics.quantiles(lat['static'], n=100)[98]:.0f} ms),"
                       f" p50 {med(lat['overview']):.1f} ms; {LARGE['runs']:,} runs; 4 windows of"
                       f" {CONCURRENT_SECONDS:g} s in turns; seeded in {seeded['large']:.0f} s"))
        return out
    finally:
        for s in servers:
            s.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    from bench.__main__ import table

    print(table(run()))
