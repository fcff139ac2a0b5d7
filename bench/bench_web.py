"""Status page latency with many runs: p95 of the overview and the job list, against a static
file served by the same app (the floor). Issue 6: with 10,000 runs, 1,000 keys and 100 jobs
in the store, p95 ≤ 50 ms for both pages."""

from __future__ import annotations

import http.client
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench import row

JOBS, RUNS, KEYS = 100, 10_000, 1_000
ROUNDS = 150
TARGET_MS = 50.0
TYPES = ("batch", "batch", "batch", "workflow", "service", "app")
STATES = ("succeeded",) * 8 + ("failed", "killed")


def seed(home) -> None:
    from localtailr import store
    from localtailr.platform import jobs, kv
    from localtailr.platform.context import context

    ctx = context(home, "root", "dev")
    entry = {"module": "bench_entry", "qualname": "main", "sys_path": None, "file": None, "kind": "module"}
    for i in range(JOBS):
        t = TYPES[i % len(TYPES)]
        jobs.save(ctx, {"name": f"job-{i:03d}", "type": t, "entrypoint": None if t == "workflow" else entry})
    for i in range(KEYS):
        kv.put(ctx, f"config/key-{i:04d}", f"value {i}")
    rng = random.Random(6)
    now = time.time()
    conn = ctx.conn
    job_ids = [r[0] for r in conn.execute("SELECT job_id FROM jobs")]
    with store.transaction(conn):
        for n in range(RUNS):
            created = now - (RUNS - n) * 30
            state = "running" if n >= RUNS - 10 else rng.choice(STATES)
            ended = None if state == "running" else created + 20
            run_id = conn.execute(
                "INSERT INTO runs (job_id, version, state, reason, run_as, environment, trigger, params,"
                " created_at, started_at, ended_at, peak_rss, peak_cpu) VALUES"
                " (?, 1, ?, ?, 0, 'dev', 'manual', '{}', ?, ?, ?, ?, ?)",
                (rng.choice(job_ids), state, None if state in ("succeeded", "running") else "exit code 1",
                 created, created + 1, ended, 50 * 2**20, 12.5),
            ).lastrowid
            conn.executemany(
                "INSERT INTO run_events (run_id, at, state, detail) VALUES (?, ?, ?, ?)",
                [(run_id, created, "pending", "manual by root"), (run_id, created + 1, "running", None)]
                + ([(run_id, ended, state, None)] if ended else []),
            )
    conn.execute("ANALYZE")


def timed_get(port: int, path: str, headers: dict) -> float:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    elapsed = (time.perf_counter() - started) * 1000
    if resp.status != 200 or not body:
        raise RuntimeError(f"GET {path}: {resp.status} {body[:200]!r}")
    return elapsed


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1]


def run() -> list[dict]:
    import logging

    from localtailr.core.home import Home
    from localtailr.web import security, server

    folder = Path(tempfile.mkdtemp(prefix="localtailr-bench-web-"))
    try:
        home = Home(folder / "home")
        t0 = time.perf_counter()
        seed(home)
        seeded = time.perf_counter() - t0
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line a request
        srv = server.serve(home)
        server.start_in_thread(srv)
        headers = {"Authorization": f"Bearer {security.token(home)}", "Host": f"127.0.0.1:{srv.server_port}"}
        paths = {"overview": "/", "job list": "/jobs", "static": "/static/style.css"}
        times: dict[str, list[float]] = {k: [] for k in paths}
        for _ in range(5):  # warm up
            for p in paths.values():
                timed_get(srv.server_port, p, headers)
        order = list(paths)
        for i in range(ROUNDS):  # interleaved, so the pages and the floor share the noise
            for name in (order if i % 2 else order[::-1]):
                times[name].append(timed_get(srv.server_port, paths[name], headers))
        srv.shutdown()
        srv.server_close()
    finally:
        from localtailr import store

        store.forget(Home(folder / "home"))
        shutil.rmtree(folder, ignore_errors=True)
    floor = p95(times["static"])
    note = f"{RUNS:,} runs, {KEYS:,} keys, {JOBS} jobs (seeded in {seeded:.1f} s); {ROUNDS} requests each over HTTP"
    out = []
    for name in ("overview", "job list"):
        value = p95(times[name])
        out.append(row(f"status page {name} p95", value, "ms", floor, "static file, same app",
                       target=f"<= {TARGET_MS:.0f} ms", ok=value <= TARGET_MS,
                       note=f"median {statistics.median(times[name]):.1f} ms (static"
                       f" {statistics.median(times['static']):.1f} ms); {note}"))
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
