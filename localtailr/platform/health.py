"""Whether the daemon, its scheduler and its supervisor are alive: read from what the daemon records.

The daemon writes ``<home>/daemon.json`` (pid, started_at, url, ...) when it starts and a
heartbeat, the epoch time as text, in the ``tags`` table: ``daemon.heartbeat`` (and, when
it records them apart, ``scheduler.heartbeat`` and ``supervisor.heartbeat``; without
those the two follow the daemon's, as they run in its loop). A part is alive when its
heartbeat is younger than ``STALE`` seconds and the daemon's process exists (with no
heartbeat recorded at all, the process alone decides).
"""

from __future__ import annotations

import json
import time
from functools import cache
from importlib import metadata

import psutil

from .. import store
from ..core.home import Home

STALE = 30.0
PARTS = ("scheduler", "supervisor")


@cache
def version() -> str:
    try:
        return metadata.version("localtailr")
    except metadata.PackageNotFoundError:
        return "unknown"


def daemon_info(home: Home) -> dict:
    """The content of ``daemon.json``, or {} when there is none (or it cannot be read)."""
    try:
        data = json.loads((home.root / "daemon.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _process_alive(pid: object) -> bool:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _heartbeats(home: Home) -> dict[str, float]:
    if not home.db_path.exists():
        return {}
    conn = store.connection(home)
    out = {}
    for name, value in conn.execute(
        "SELECT name, value FROM tags WHERE name IN"
        " ('daemon.heartbeat', 'scheduler.heartbeat', 'supervisor.heartbeat')"
    ):
        try:
            out[name.split(".")[0]] = float(value)
        except ValueError:
            continue
    return out


def status(home: Home, web_started: float | None = None) -> dict:
    """Health of the home's daemon and its parts, with localtailr's version and uptimes."""
    now = time.time()
    info = daemon_info(home)
    beats = _heartbeats(home)
    pid = info.get("pid")
    process = _process_alive(pid)

    def part(name: str) -> dict:
        beat = beats.get(name, beats.get("daemon"))
        age = None if beat is None else max(0.0, now - beat)
        # a daemon that records no heartbeat at all is judged by its process alone
        fresh = age < STALE if age is not None else not beats
        return {"alive": bool(process and fresh),
                "heartbeat_age": None if age is None else round(age, 3)}

    started = info.get("started_at")
    daemon = {
        **part("daemon"),
        "pid": pid if process else None,
        "started_at": started,
        "uptime": round(now - started, 3) if process and isinstance(started, (int, float)) else None,
        "url": info.get("url"),
    }
    parts = {name: part(name) for name in PARTS}
    return {
        "ok": daemon["alive"] and all(p["alive"] for p in parts.values()),
        "version": version(),
        "home": str(home.root),
        "daemon": daemon,
        **parts,
        "web": {"uptime": None if web_started is None else round(now - web_started, 3)},
    }
