"""The workflow engine: moves workflow runs forward, driven only by rows of the store.

A workflow run is one *parent* run (``task_name`` NULL) of a job of type
``"workflow"`` and one *child* run per task attempt (``parent_run_id`` set,
``task_name`` = the node's name, ``attempt`` = 1, 2, ...). The DAG is the job
version's ``definition["workflow"]`` (``DAG.to_dict()``).

``advance(home, parent_run_id)`` looks at the rows and, in one transaction:

- a ``pending`` parent becomes ``running``;
- a node whose upstreams all succeeded gets a ``pending`` child run, while fewer
  than ``max_parallel`` (default: the core count) children are active; the
  daemon starts it (``python -m localtailr.runtime.workflows.task_runner <run_id>``);
- a failed attempt with retries left gets a new attempt once its backoff
  (``retry_backoff * 2 ** (attempt - 1)`` seconds after it ended) has passed;
- a node that failed for good marks its not yet started transitive dependents
  ``skipped`` (reason ``upstream X failed``); the other nodes still run;
- when every node is done the parent ends: ``succeeded``, or ``failed`` with the
  first failure as its reason;
- a stop request on the parent (``stop()``), ``fail_after`` (seconds since the
  run started) or ``expire_after`` (seconds since it was created) ends the run:
  pending children are killed at once, running ones get a ``stop-requested``
  event (the daemon kills them), nodes never started are ``skipped``; once no
  child is active the parent ends ``killed`` (stop, expire_after) or ``failed``
  (fail_after) with that reason.

Nothing lives in memory between calls (a parsed-definition cache aside), so the
daemon can be killed and restarted at any moment. ``advance_all(home)`` is what
the daemon calls each time round its loop.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from ... import store
from ...core.home import Home
from ...core.runs import ACTIVE, TERMINAL
from ...store import job_versions, runs, wakeup
from ...store.clock import now as clock_now
from ...store.runs import STOP_REQUESTED, failure_detail, latest_children

# -- reading ---------------------------------------------------------------------

def definition(conn: sqlite3.Connection, job_id: int, version: int) -> dict:
    """The parsed definition of a job version (``store.job_versions``), with its workflow's
    nodes by name (``_nodes``) and their names in order (``_order``)."""
    found = job_versions.definition(conn, job_id, version)
    if found is None:
        raise ValueError(f"job {job_id} has no version {version}")
    nodes = (found.get("workflow") or {}).get("nodes", [])
    return {**found, "_nodes": {n["name"]: n for n in nodes}, "_order": [n["name"] for n in nodes]}


# -- writing ---------------------------------------------------------------------

def set_state(
    conn: sqlite3.Connection, run_id: int, state: str, reason: str | None, now: float
) -> None:
    """Move a run to ``state`` with ``reason`` (through the runs module's table)."""
    runs.set_state(conn, run_id, state, reason, now=now, reason=reason)


def _new_child(
    conn: sqlite3.Connection, parent: sqlite3.Row, task_name: str, attempt: int,
    state: str, reason: str | None, now: float,
) -> int:
    return runs.create(
        conn, job_id=parent["job_id"], version=parent["version"], parent_run_id=parent["run_id"],
        task_name=task_name, state=state, reason=reason, run_as=parent["run_as"],
        environment=parent["environment"], trigger=parent["trigger"], params=parent["params"],
        scheduled_for=parent["scheduled_for"], image_key=parent["image_key"], attempt=attempt,
        now=now, detail=reason)


# -- the engine ------------------------------------------------------------------

def _max_parallel(defn: dict) -> int:
    value = defn.get("max_parallel")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return os.cpu_count() or 1


def _downstream(nodes: dict[str, dict]) -> dict[str, list[str]]:
    downs: dict[str, list[str]] = {name: [] for name in nodes}
    for name, node in nodes.items():
        for up in node.get("depends_on", []):
            downs[up].append(name)
    return downs


def _retry_at(node: dict, child: sqlite3.Row) -> float | None:
    """When the next attempt of a failed child may start, or None if none is left."""
    if child["state"] not in ("failed", "lost") or child["attempt"] > int(node.get("retries", 0)):
        return None
    backoff = float(node.get("retry_backoff", 1.0)) * 2 ** (child["attempt"] - 1)
    return (child["ended_at"] or child["created_at"]) + backoff


def _ending(conn: sqlite3.Connection, parent: sqlite3.Row, defn: dict, now: float):
    """(final state, reason) if the run must end early (stop, fail_after, expire_after).

    ``now`` is localtailr's clock (``store.clock``): a test moves it instead of sleeping."""
    stop = runs.event_detail(conn, parent["run_id"], STOP_REQUESTED)
    if stop is not None:
        return "killed", stop or "stopped"
    fail_after = defn.get("fail_after")
    started = parent["started_at"] or now
    if fail_after and now - started > float(fail_after):
        return "failed", f"fail_after: not finished within {_seconds(fail_after)}"
    expire_after = defn.get("expire_after")
    if expire_after and now - parent["created_at"] > float(expire_after):
        return "killed", f"expire_after: not finished within {_seconds(expire_after)}"
    return None


def _seconds(value: Any) -> str:
    value = float(value)
    return f"{value:g}s"


def advance(home: Home, parent_run_id: int, now: float | None = None,
            wake: bool = True) -> str:
    """Move one workflow run forward (see the module docstring); returns the parent's state.
    When it made a task's run to start, the daemon is woken (``wake``; the daemon itself,
    which starts pending runs next anyway, says False)."""
    conn = store.connection(home)
    notify = False
    with store.transaction(conn):
        state, notify = _advance(conn, parent_run_id, time.time() if now is None else now,
                                 clock_now(home) if now is None else now)
    if notify and wake:
        wakeup.notify(home)
    return state


def _advance(  # noqa: C901 - the engine's rules in the order they apply, read in one place
    conn: sqlite3.Connection, parent_run_id: int, now: float, limits_now: float
) -> tuple[str, bool]:
    parent = conn.execute("SELECT * FROM runs WHERE run_id = ?", (parent_run_id,)).fetchone()
    if parent is None:
        raise ValueError(f"no run {parent_run_id}")
    if parent["parent_run_id"] is not None:
        raise ValueError(f"run {parent_run_id} is a task of workflow run {parent['parent_run_id']}")
    if parent["state"] in TERMINAL:
        return parent["state"], False
    defn = definition(conn, parent["job_id"], parent["version"])
    nodes: dict[str, dict] = defn["_nodes"]
    if not nodes:
        set_state(conn, parent_run_id, "failed", "the job version has no workflow tasks", now)
        return "failed", False
    if parent["state"] != "running":
        set_state(conn, parent_run_id, "running", None, now)
        parent = conn.execute("SELECT * FROM runs WHERE run_id = ?", (parent_run_id,)).fetchone()
    children = latest_children(conn, parent_run_id)

    ending = _ending(conn, parent, defn, limits_now)
    if ending is not None:
        return _end_early(conn, parent, defn, children, ending, now)

    status: dict[str, str] = {}  # node -> succeeded | failed | skipped | active | waiting | new
    notify = False
    for name in defn["_order"]:
        child = children.get(name)
        if child is None:
            status[name] = "new"
        elif child["state"] in ACTIVE:
            status[name] = "active"
        elif child["state"] in ("succeeded", "skipped"):
            status[name] = child["state"]
        else:
            at = _retry_at(nodes[name], child)
            if at is None:
                status[name] = "failed"
            elif at <= now:
                _new_child(conn, parent, name, child["attempt"] + 1, "pending", None, now)
                status[name] = "active"
                notify = True
            else:
                status[name] = "waiting"

    # Skip everything downstream of a final failure.
    downs = _downstream(nodes)
    for name in defn["_order"]:
        if status[name] != "failed":
            continue
        todo, cause = list(downs[name]), name
        while todo:
            d = todo.pop()
            if status[d] == "new":
                _new_child(conn, parent, d, 1, "skipped", f"upstream {cause} failed", now)
                status[d] = "skipped"
                todo.extend(downs[d])

    active = sum(1 for s in status.values() if s == "active")
    room = _max_parallel(defn) - active
    for name in defn["_order"]:
        if room <= 0:
            break
        if status[name] == "new" and all(
            status[u] == "succeeded" for u in nodes[name].get("depends_on", [])
        ):
            _new_child(conn, parent, name, 1, "pending", None, now)
            status[name] = "active"
            room -= 1
            notify = True

    if any(s in ("active", "waiting", "new") for s in status.values()):
        return "running", notify
    failed = [n for n in defn["_order"] if status[n] == "failed"]
    if not failed:
        set_state(conn, parent_run_id, "succeeded", None, now)
        return "succeeded", notify
    first = failed[0]
    reason = f"task {first} failed: {failure_detail(conn, children[first])}"
    if len(failed) > 1:
        reason += f" (and {len(failed) - 1} more: {', '.join(failed[1:])})"
    skipped = [n for n in defn["_order"] if status[n] == "skipped"]
    if skipped:
        reason += f"; skipped: {', '.join(skipped)}"
    set_state(conn, parent_run_id, "failed", reason, now)
    return "failed", notify


def _end_early(
    conn: sqlite3.Connection, parent: sqlite3.Row, defn: dict,
    children: dict[str, sqlite3.Row], ending: tuple[str, str], now: float,
) -> tuple[str, bool]:
    final, reason = ending
    notify, still = False, 0
    for name in defn["_order"]:
        child = children.get(name)
        if child is None:
            _new_child(conn, parent, name, 1, "skipped", reason, now)
        elif child["state"] == "pending":
            set_state(conn, child["run_id"], "killed", reason, now)
        elif child["state"] in ACTIVE:
            still += 1
            if runs.event_detail(conn, child["run_id"], STOP_REQUESTED) is None:
                runs.add_event(conn, child["run_id"], STOP_REQUESTED, reason, now)
                notify = True
    if still:
        return parent["state"], notify
    set_state(conn, parent["run_id"], final, reason, now)
    return final, notify


def active_parents(conn: sqlite3.Connection) -> list[int]:
    """Workflow runs not yet ended (parents only)."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT r.run_id FROM runs r JOIN jobs j ON j.job_id = r.job_id "
            "WHERE r.state IN ('pending', 'building', 'starting', 'running') "
            "AND r.parent_run_id IS NULL AND j.type = 'workflow' ORDER BY r.run_id"
        )
    ]


def advance_all(home: Home, now: float | None = None, wake: bool = True) -> dict[int, str]:
    """Advance every workflow run not yet ended; ``{parent run id: state}``.

    The daemon calls this each time round its loop (and after any child run ends), with
    ``wake`` False: it starts the pending runs right after.
    """
    conn = store.connection(home)
    out: dict[int, str] = {}
    for run_id in active_parents(conn):
        out[run_id] = advance(home, run_id, now, wake)
    return out




