"""One task of a workflow run, in its own process: ``python -m localtailr.runtime.workflows.task_runner <run_id>``.

The run is a child run (``parent_run_id`` and ``task_name`` set). The runner:

1. reads the node from the job version's ``definition["workflow"]``;
2. loads its inputs: the pickled results (``run_results``) of the upstream
   tasks' successful runs under the same parent;
3. fills the system arguments: ``rundate`` = the date of the parent's
   ``scheduled_for`` in the schedule's timezone (else ``DATATAILR_BATCH_ARG_RUNDATE``,
   else today), ``scheduled_time``, ``started_at`` (the workflow run's start),
   ``batch_name`` (the workflow's name) and ``job_name`` (the node's name);
4. calls the task (``core.task_call.run_node``), pickles its result and stores it with
   its ``repr`` in ``run_results``;
5. exits 0, or 1 after printing the traceback to stderr and recording a
   ``task-error`` run event whose detail is the error in one line.

It does not change the run's state: the daemon does, from the exit code. Kept
light on imports: a task pays for Python, sqlite3 and the task's own module.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from localtailr import store
from localtailr.core.dag import referenced_names
from localtailr.core.home import Home
from localtailr.core.task_call import run_node
from localtailr.store import runs

EXIT_OK = 0
EXIT_FAILED = 1
REPR_LIMIT = 2000
TASK_ERROR = "task-error"
LOAD_RUN = "SELECT * FROM runs WHERE run_id = ?"


class TaskFailed(Exception):
    """The task could not run or its result could not be kept; the message says why."""


def _iso(ts: float, tz: str | None) -> datetime:
    when = datetime.fromtimestamp(ts, UTC)
    if tz:
        return when.astimezone(ZoneInfo(tz))
    return when.astimezone()


def system_args(defn: dict, parent: Any, node_name: str) -> dict[str, str]:
    """The system arguments for a node of the workflow run ``parent`` (a runs row)."""
    out: dict[str, str] = {
        "batch_name": (defn.get("workflow") or {}).get("name") or defn.get("display_name")
        or defn.get("name", ""),
        "job_name": node_name,
    }
    tz = (defn.get("schedule") or {}).get("timezone")
    if parent["started_at"]:
        out["started_at"] = _iso(parent["started_at"], tz).isoformat(timespec="seconds")
    if parent["scheduled_for"]:
        fire = _iso(parent["scheduled_for"], tz)
        out["scheduled_time"] = fire.isoformat(timespec="seconds")
        out["rundate"] = fire.date().isoformat()
    return out


_opened: tuple[str, Any, int] | None = None  # (home, connection, database inode): ``prepare``


def prepare(home_root: str) -> None:
    """Open the home's database before the task is known (a fork server's child, forked
    ahead of its run, does): ``run`` then takes this connection, unless the database was
    made anew meanwhile (``localtailr reset``)."""
    global _opened
    home = Home(Path(home_root))
    if not home.db_path.exists():
        return  # a home removed meanwhile: not made again from here
    conn = _connect(home_root)
    conn.execute(LOAD_RUN, (0,)).fetchall()  # reads the schema; the statement is kept
    _opened = (home_root, conn, os.stat(home.db_path).st_ino)


def _connect(home_root: str):
    global _opened
    opened, _opened = _opened, None
    if opened is not None:
        root, conn, inode = opened
        try:
            if root == home_root and os.stat(Home(Path(root)).db_path).st_ino == inode:
                return conn
        except OSError:
            pass
        conn.close()
    # the daemon that started this task made the home and migrated its database
    return store.connect_existing(Home(Path(home_root)))


def load(conn: Any, run_id: int) -> tuple[dict, dict, dict[str, Any], dict[str, str]]:
    """(definition, node, inputs, system args) for child run ``run_id``."""
    run = conn.execute(LOAD_RUN, (run_id,)).fetchone()
    if run is None:
        raise TaskFailed(f"no run {run_id} in this home")
    if run["parent_run_id"] is None or not run["task_name"]:
        raise TaskFailed(f"run {run_id} is not a task of a workflow run")
    from localtailr.store import job_versions  # loaded with the store (_connect): light imports

    defn = job_versions.definition(conn, run["job_id"], run["version"])
    if defn is None:
        raise TaskFailed(f"job {run['job_id']} has no version {run['version']}")
    nodes = {n["name"]: n for n in (defn.get("workflow") or {}).get("nodes", [])}
    node = nodes.get(run["task_name"])
    if node is None:
        raise TaskFailed(f"the workflow has no task {run['task_name']!r}")
    inputs: dict[str, Any] = {}
    for up in node.get("depends_on", []):
        found = conn.execute(
            "SELECT rr.data FROM runs r JOIN run_results rr ON rr.run_id = r.run_id "
            "WHERE r.parent_run_id = ? AND r.task_name = ? AND r.state = 'succeeded' "
            "ORDER BY r.run_id DESC LIMIT 1",
            (run["parent_run_id"], up),
        ).fetchone()
        if found is None:
            if up in referenced_names(node.get("args", []), node.get("kwargs", {})):
                raise TaskFailed(f"task {node['name']!r} needs the result of {up!r}, which has none")
            continue
        inputs[up] = pickle.loads(found[0])
    parent = conn.execute(
        "SELECT * FROM runs WHERE run_id = ?", (run["parent_run_id"],)
    ).fetchone()
    return defn, node, inputs, system_args(defn, parent, node["name"])


def _sys_path(defn: dict) -> None:
    for folder in reversed(defn.get("sys_path") or []):
        if folder and folder not in sys.path:
            sys.path.insert(0, folder)
    entry = (defn.get("entrypoint") or {}).get("sys_path")
    if entry and entry not in sys.path:
        sys.path.insert(0, entry)


def _failure_file(home_root: str, run_id: int, detail: str) -> None:
    """``runs/<id>/failure.json``: the supervisor makes it the run's reason."""
    folder = os.path.join(home_root, "runs", str(run_id))
    if os.path.isdir(folder):
        try:
            path = os.path.join(folder, "failure.json")  # 0600: the user's umask is in force
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                json.dump({"reason": detail}, f)
        except OSError:
            pass


def run(run_id: int, home_root: str) -> int:
    """Run child run ``run_id`` of the home at ``home_root``; the exit code."""
    conn = _connect(home_root)
    try:
        defn, node, inputs, system = load(conn, run_id)
        _sys_path(defn)
        result = run_node(node, inputs, system)
        try:
            data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise TaskFailed(
                f"task {node['name']!r} returned a result that cannot be pickled "
                f"({type(exc).__name__}: {exc}); return plain data (numbers, strings, lists, "
                "dicts, dataframes ...) instead"
            ) from None
        try:
            text = repr(result)
        except Exception as exc:  # noqa: BLE001 - a broken __repr__ must not fail the task
            text = f"<repr failed: {type(exc).__name__}>"
        with store.transaction(conn):
            conn.execute(
                "INSERT OR REPLACE INTO run_results (run_id, data, repr) VALUES (?, ?, ?)",
                (run_id, data, text[:REPR_LIMIT]),
            )
        return EXIT_OK
    except BaseException as exc:  # noqa: BLE001 - every failure is reported the same way
        if isinstance(exc, TaskFailed):
            detail = str(exc)
            print(f"localtailr: {detail}", file=sys.stderr)
        else:
            traceback.print_exc()
            detail = f"{type(exc).__name__}: {exc}"
        detail = " ".join(detail.split())[:REPR_LIMIT]
        _failure_file(home_root, run_id, detail)
        try:
            with store.transaction(conn):
                runs.add_event(conn, run_id, TASK_ERROR, detail)
        except Exception:  # noqa: BLE001 - the exit code still says it failed
            traceback.print_exc()
        return EXIT_FAILED
    finally:
        conn.close()


def main(argv: list[str] | dict | None = None) -> int:
    """Entry point: ``argv`` is ``[run_id]`` (command line), or the supervisor's launch dict
    (``run_id``, optionally ``home``); the home defaults to ``LOCALTAILR_HOME``."""
    if isinstance(argv, dict):
        run_id = argv.get("run_id") or (argv.get("task") or {}).get("run_id")
        home = argv.get("home")
    else:
        args = sys.argv[1:] if argv is None else argv
        if len(args) != 1 or not args[0].isdigit():
            print("usage: python -m localtailr.runtime.workflows.task_runner <run_id>", file=sys.stderr)
            return 2
        run_id, home = args[0], None
    if run_id is None:
        print("localtailr: the launch names no run_id", file=sys.stderr)
        return 2
    if not home:
        from localtailr.core.home import default_path  # LOCALTAILR_HOME, read now

        home = str(default_path())
    return run(int(run_id), str(home))


if __name__ == "__main__":
    sys.stdout.flush()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown: the result is committed
