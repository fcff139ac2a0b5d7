"""What starting a run needs, read from its rows: its job, version's definition, user,
parameters, image spec and limits."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ... import store
from ...core.home import Home
from ...core.image_spec import ImageSpec
from ...core.resources import format_memory, parse_cpu, parse_memory
from ...store import job_versions


class LaunchError(Exception):
    """A run could not be started; the message is the run's reason."""


@dataclass
class RunInfo:
    """What starting a run needs, read from its rows."""

    run_id: int
    job_id: int
    job_name: str
    job_type: str
    environment: str
    version: int
    definition: dict
    params: dict
    run_as: str
    parent_run_id: int | None
    task_name: str | None
    restarts: int


def load_run(home: Home, run_id: int) -> RunInfo:
    conn = store.connection(home)
    row = conn.execute(
        "SELECT r.*, j.name AS job_name, j.type AS job_type, "
        "u.name AS user_name, u.disabled AS user_disabled FROM runs r "
        "JOIN jobs j ON j.job_id = r.job_id "
        "LEFT JOIN users u ON u.user_id = r.run_as WHERE r.run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise LaunchError(f"run {run_id} does not exist")
    definition = job_versions.definition(conn, row["job_id"], row["version"])
    if definition is None:
        raise LaunchError(f"job version {row['version']} of {row['job_name']!r} does not exist")
    run_as = definition.get("run_as") or row["user_name"]
    if run_as:
        user = conn.execute("SELECT name, disabled FROM users WHERE name = ?",
                            (run_as,)).fetchone()
        if user is None:
            raise LaunchError(f"unknown run_as user {run_as!r}: no such user")
        if user["disabled"]:
            raise LaunchError(f"run_as user {run_as!r} is disabled")
    else:
        raise LaunchError(f"the run's user (id {row['run_as']}) does not exist")
    try:
        params = json.loads(row["params"] or "{}")
    except ValueError:
        params = {}
    return RunInfo(run_id, row["job_id"], row["job_name"], row["job_type"], row["environment"],
                   row["version"], definition, params if isinstance(params, dict) else {},
                   run_as, row["parent_run_id"], row["task_name"], row["restarts"])


def image_spec(definition: dict):
    """The ImageSpec of a definition (an empty image when it has none)."""
    return ImageSpec.from_image_dict(definition.get("image") or {})


def limits(definition: dict, task_name: str | None = None) -> tuple[int | None, str, float | None]:
    """The run's memory limit (bytes, text) and CPU cores: a workflow task's own where its
    node gives them, else the job's ``resources``."""
    res = dict(definition.get("resources") or {})
    nodes = (definition.get("workflow") or {}).get("nodes") or []
    for node in nodes:
        if task_name is not None and node.get("name") == task_name:
            res.update({k: node[k] for k in ("memory", "cpu") if node.get(k) not in (None, "")})
    memory = res.get("memory")
    mem = parse_memory(memory) if memory not in (None, "") else None
    cpu = parse_cpu(res["cpu"]) if res.get("cpu") not in (None, "") else None
    return mem, (format_memory(mem) if mem else ""), cpu


def prepare(home: Home, run_id: int) -> tuple[RunInfo, object]:
    """The run's info and image spec (LaunchError for an unknown user, a bad definition)."""
    info = load_run(home, run_id)
    try:
        spec = image_spec(info.definition)
        limits(info.definition, info.task_name)
    except (ValueError, TypeError) as exc:
        raise LaunchError(f"invalid definition: {exc}") from exc
    return info, spec
