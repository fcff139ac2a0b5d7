"""What a run reads and writes, recorded as it happens (read by ``lineage``).

Inside a job's process (``LOCALTAILR_RUN_ID`` set) every read of a blob, key or
secret records the version read (``run_reads``), and every write records the run
beside the new version (``blob_versions.run_id``, ``kv_versions.run_id``).
"""

from __future__ import annotations

import contextvars
import os
import time

from .. import store
from .context import Context

RUN_VAR = "LOCALTAILR_RUN_ID"
# Read at every call (a test may set it), from os.environ's own dict: os.environ.get()
# would cost a sixth of a KV get.
_environ_data = getattr(os.environ, "_data", None)
_KEY = os.environ.encodekey(RUN_VAR) if _environ_data is not None else RUN_VAR


# The run a call is made for when it is not this process's own: the daemon answering a
# ``dt`` call that a job's process handed it over the socket (see dt/server.py).
_CALL_RUN: contextvars.ContextVar[int | None] = contextvars.ContextVar("call_run", default=None)


def acting_for(run_id: int | None) -> contextvars.Token:
    """Record what this thread does as done by ``run_id`` until ``done(token)``."""
    return _CALL_RUN.set(run_id)


def done(token: contextvars.Token) -> None:
    _CALL_RUN.reset(token)


def current_run() -> int | None:
    """The run this call is made for (a ``dt`` call handed to the daemon), else the run this
    process belongs to (``LOCALTAILR_RUN_ID``), or None outside a job."""
    run = _CALL_RUN.get()
    if run is not None:
        return run
    value = (_environ_data if _environ_data is not None else os.environ).get(_KEY)
    if not value:
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return int(value) if value.isdigit() else None


def record_read(ctx: Context, resource: str, version: int) -> None:
    """Note that the current run (if any) read ``resource`` at ``version``, and which run
    wrote that version (so that lineage follows run-to-run edges in one table)."""
    run = current_run()
    if run is None:
        return
    kind, _, rest = resource.partition("/")
    args: tuple[str | int, ...]
    if kind == "blob":
        writer, args = "SELECT run_id FROM blob_versions WHERE name = ? AND version = ?", (rest, version)
    else:
        environment, _, key = rest.partition("/")
        writer = "SELECT run_id FROM kv_versions WHERE kind = ? AND environment = ? AND key = ? AND version = ?"
        args = ("key" if kind == "kv" else "secret", environment, key, version)
    store.write(ctx.conn, "INSERT OR IGNORE INTO run_reads (run_id, resource, version, at, writer_run)"
                f" VALUES (?, ?, ?, ?, ({writer}))", (run, resource, version, time.time(), *args))
