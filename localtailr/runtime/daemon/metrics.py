"""What the daemon records of its runs and of itself: the runs' CPU and memory samples
(``run_metrics``, thinned to ``METRIC_ROWS`` a run, and the peaks on ``runs``) and its
heartbeats (``tags``)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from ... import store
from ...core.home import Home
from ...store import runs as run_state
from ..process.supervised import METRIC_ROWS, Supervised
from .log import log


def record(home: Home, metrics: Iterable[tuple[Supervised, tuple[float, int]]]) -> None:
    """One ``run_metrics`` row a (run, (cpu, rss)), in one transaction."""
    conn = store.connection(home)
    at = time.time()
    with store.transaction(conn):
        for sv, (cpu, rss) in metrics:
            conn.execute("INSERT INTO run_metrics (run_id, at, cpu, rss) VALUES (?, ?, ?, ?)",
                         (sv.run_id, at, round(cpu, 4), rss))
            run_state.set_columns(conn, sv.run_id, peak_rss=sv.peak_rss,
                                  peak_cpu=round(sv.peak_cpu, 3))
            sv.metric_rows += 1
            if sv.metric_rows > METRIC_ROWS and sv.metric_rows % 100 == 0:
                conn.execute(
                    "DELETE FROM run_metrics WHERE run_id = ? AND at < (SELECT at FROM "
                    "run_metrics WHERE run_id = ? ORDER BY at DESC LIMIT 1 OFFSET ?)",
                    (sv.run_id, sv.run_id, METRIC_ROWS - 1))


def write_heartbeats(home: Home, beats: dict[str, float]) -> None:
    """``<part>.heartbeat`` for every part of ``beats`` (epoch seconds), in one UPSERT; a
    busy store is logged, not raised."""
    rows = [(f"{part}.heartbeat", f"{at:.3f}") for part, at in beats.items()]
    try:
        store.connection(home).execute(
            "INSERT INTO tags (name, value) VALUES "
            + ", ".join("(?, ?)" for _ in rows)
            + " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            [x for r in rows for x in r])
    except Exception as exc:  # noqa: BLE001 - a busy store must not stop the daemon
        log(f"heartbeat not written: {type(exc).__name__}: {exc}")
