"""``job save|run|start|stop|restart|get|ls|runs|versions|set-version|promote|rm|rm-version|rerun|wait``.

A job is named per environment by its normalised name (lower case, each run of other
characters than ``[a-z0-9]`` turned into ``-``); every operation accepts the display name
too. Each save is a new version of the definition; one version is current. A run is a
row in state "pending" that the daemon picks up (woken by ``runtime.wakeup.notify``);
every later state is the daemon's to record.

Rights on ``job/<environment>/<name>``: OPERATE to run, start, stop, restart, rerun and
remove; READ to see the job, its runs and logs; WRITE to save a new version or choose
the current one; PROMOTE to copy a version to the next environment (dev → pre → prod).
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import time
from collections.abc import Mapping
from typing import Any

from .. import store
from ..core import entrypoints, env_text, environments, names
from ..core.errors import NotFoundError
from ..core.home import Home
from ..core.image_spec import ImageSpec
from ..core.resources import Resources
from ..core.runs import ACTIVE, LONG_RUNNING, TERMINAL
from ..store import job_versions, wakeup
from ..store import runs as runs_store
from . import acl, schedules
from .context import Context

TYPES = ("batch", "service", "app", "excel", "workflow")
TRIGGERS = ("manual", "schedule", "restart", "rerun")

_NAME_RUN = re.compile(r"[^a-z0-9]+")
_RESERVED_ENV = ("DATATAILR_", "LOCALTAILR_")
MAX_NAME = 100


# -- names ------------------------------------------------------------------------


def normalise_name(name: object) -> str:
    """The platform's job name: "Simple Service - alice" → "simple-service-alice"."""
    if not isinstance(name, str) or "\x00" in name:
        raise ValueError(f"invalid job name {name!r}: use a non-empty string")
    slug = _NAME_RUN.sub("-", name.lower()).strip("-")
    if not slug:
        raise ValueError(f"invalid job name {name!r}: it needs at least one letter or digit")
    if len(slug) > MAX_NAME:
        raise ValueError(f"invalid job name {name!r}: at most {MAX_NAME} characters once normalised")
    return slug


def resource(environment: str, name: str) -> str:
    """The ACL resource of a job."""
    return f"job/{environment}/{name}"


# -- definitions ------------------------------------------------------------------


def check_env_vars(env_vars: object) -> dict:
    """Validate ``env_vars``: names are identifiers (not DATATAILR_*/LOCALTAILR_*), values
    str, int, float or bool."""
    if env_vars is None:
        return {}
    if not isinstance(env_vars, Mapping):
        raise ValueError(f"invalid env_vars {env_vars!r}: expected a dict of name to value")
    out = {}
    for key, value in env_vars.items():
        if not env_text.is_name(key):
            raise ValueError(
                f"invalid env_vars name {key!r}: use letters, digits and '_', not starting with a digit"
            )
        if key.upper().startswith(_RESERVED_ENV):
            raise ValueError(
                f"invalid env_vars name {key!r}: names starting with DATATAILR_ or LOCALTAILR_"
                " are set by the platform"
            )
        if not isinstance(value, (str, int, float, bool)):
            raise ValueError(
                f"invalid env_vars value for {key}: {value!r} ({type(value).__name__});"
                " use str, int, float or bool"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"invalid env_vars value for {key}: {value!r}; use a finite number")
        if isinstance(value, str):
            env_text.check_value(f"env_vars value for {key}", value)
        out[key] = value
    return out


def check_resources(resources: object) -> dict:
    """``{"memory": "256m", "cpu": 1.0}`` validated (a Resources or its dict form)."""
    if resources is None:
        return Resources().to_dict()
    if isinstance(resources, Resources):
        resources = resources.to_dict()
    if not isinstance(resources, Mapping):
        raise ValueError(f"invalid resources {resources!r}: use Resources(memory=..., cpu=...)")
    unknown = set(resources) - {"memory", "cpu"}
    if unknown:
        raise ValueError(f"invalid resources {dict(resources)!r}: only memory and cpu are accepted")
    return Resources.from_dict(dict(resources)).to_dict()


def check_definition(ctx: Context, definition: Mapping) -> dict:
    """A definition validated and completed: normalised name, known type and environment,
    checked entrypoint, resources, env_vars, framework and an existing run_as user.

    Keys beyond the contract's are kept as given (they must be JSON data).
    """
    if not isinstance(definition, Mapping):
        raise ValueError(f"a job definition must be a dict, not {type(definition).__name__}")
    d = dict(definition)
    display = d.get("display_name") or d.get("name")
    d["name"] = normalise_name(d.get("name"))
    d["display_name"] = display
    if d.get("type") not in TYPES:
        raise ValueError(f"invalid job type {d.get('type')!r}: expected one of {', '.join(TYPES)}")
    d["environment"] = environments.normalise(d.get("environment") or ctx.environment)
    d["entrypoint"] = entrypoints.check(d.get("entrypoint"), required=d["type"] != "workflow")
    image = d.get("image") or {}
    # Parsed now as the launch will parse it: a definition that cannot build is not saved.
    ImageSpec.from_image_dict(image)
    d["image"] = dict(image)
    d["resources"] = check_resources(d.get("resources"))
    d["env_vars"] = check_env_vars(d.get("env_vars"))
    run_as = d.get("run_as") or ctx.user
    run_as = getattr(run_as, "name", run_as)
    if not isinstance(run_as, str):
        raise ValueError(f"invalid run_as {run_as!r}: use a user name")
    row = ctx.conn.execute("SELECT name, disabled FROM users WHERE name = ?", (run_as,)).fetchone()
    if row is None:
        raise ValueError(f"run_as user {run_as!r} does not exist")
    if row["disabled"]:
        raise ValueError(f"run_as user {run_as!r} is disabled")
    d["run_as"] = run_as
    fw = entrypoints.framework(d.get("framework"))
    if fw is not None and d["type"] != "app":
        raise ValueError(f"framework {fw!r} is for apps; a {d['type']} job has none")
    if d["type"] == "app" and fw is None and d["entrypoint"]:
        fw = entrypoints.infer_framework(d["entrypoint"])
    d["framework"] = fw
    d.setdefault("schedule", None)
    d.setdefault("workflow", None)
    try:
        json.dumps(d)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a job definition must be JSON data: {exc}") from None
    return d


def _may_run_as(ctx: Context, run_as: str) -> None:
    if run_as != ctx.user and not ctx.caller.is_admin:
        raise ValueError(
            f"run_as {run_as!r}: only an admin may define a job that runs as another user"
            f" (you are {ctx.user!r})"
        )


# -- reading ----------------------------------------------------------------------


def _job_row(ctx: Context, name: str, environment: str | None = None):
    env = environments.normalise(environment or ctx.environment)
    slug = normalise_name(name)
    row = ctx.conn.execute(
        "SELECT * FROM jobs WHERE name = ? AND environment = ?", (slug, env)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"job {slug!r} not found in environment {env}")
    return row


def _definition(conn, job_id: int, version: int) -> dict:
    """A job version's definition, the caller's own copy to change ({} if none)."""
    return copy.deepcopy(job_versions.definition(conn, job_id, version) or {})


def definition_for_run(conn, run_id: int) -> dict:
    """The definition (version) a run was created from; for the daemon."""
    found = job_versions.definition_for_run(conn, run_id)
    if found is None:
        raise NotFoundError(f"run {run_id} not found")
    return copy.deepcopy(found)


def _user_name(conn, user_id: int) -> str | None:
    row = conn.execute("SELECT name FROM users WHERE user_id = ?", (user_id,)).fetchone()
    return row[0] if row else None


def _run_dict(conn, row) -> dict:
    job = conn.execute("SELECT name, type FROM jobs WHERE job_id = ?", (row["job_id"],)).fetchone()
    return {
        "run_id": row["run_id"],
        "job": job["name"] if job else None,
        "job_type": job["type"] if job else None,
        "environment": row["environment"],
        "version": row["version"],
        "state": row["state"],
        "reason": row["reason"],
        "trigger": row["trigger"],
        "params": json.loads(row["params"] or "{}"),
        "run_as": _user_name(conn, row["run_as"]),
        "parent_run_id": row["parent_run_id"],
        "task_name": row["task_name"],
        "pid": row["pid"],
        "port": row["port"],
        "url": row["url"],
        "exit_code": row["exit_code"],
        "restarts": row["restarts"],
        "attempt": row["attempt"],
        "peak_rss": row["peak_rss"],
        "peak_cpu": row["peak_cpu"],
        "scheduled_for": row["scheduled_for"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "ended_at": row["ended_at"],
    }


def _latest_run(conn, job_id: int):
    return conn.execute(
        "SELECT * FROM runs WHERE job_id = ? AND parent_run_id IS NULL ORDER BY run_id DESC LIMIT 1",
        (job_id,),
    ).fetchone()


def _status(conn, job) -> str:
    """What a job is doing: its latest run's state, "crash-looping", "stopped" or "never run"."""
    run = _latest_run(conn, job["job_id"])
    if run is None:
        return "never run"
    event = conn.execute(
        "SELECT state FROM run_events WHERE run_id = ? ORDER BY at DESC, rowid DESC LIMIT 1",
        (run["run_id"],),
    ).fetchone()
    if event and event[0] == "crash-looping" and run["state"] not in TERMINAL:
        return "crash-looping"
    if job["type"] in LONG_RUNNING and job["desired_state"] == "stopped" and run["state"] in TERMINAL:
        return "stopped"
    return run["state"]


def _job_dict(conn, job, with_definition: bool = True) -> dict:
    definition = _definition(conn, job["job_id"], job["current_version"])
    latest = _latest_run(conn, job["job_id"])
    versions = conn.execute(
        "SELECT count(*) FROM job_versions WHERE job_id = ?", (job["job_id"],)
    ).fetchone()[0]
    out = {
        "name": job["name"],
        "display_name": definition.get("display_name") or job["name"],
        "environment": job["environment"],
        "type": job["type"],
        "version": job["current_version"],
        "versions": versions,
        "desired_state": job["desired_state"],
        "status": _status(conn, job),
        "owner": _user_name(conn, job["owner_id"]),
        "run_as": definition.get("run_as"),
        "last_run_id": latest["run_id"] if latest else None,
        "url": latest["url"] if latest and latest["state"] == "running" else None,
        "created_at": job["created_at"],
        "schedule": definition.get("schedule"),
        "next_fire": _next_fire(conn, job["job_id"]),
    }
    if with_definition:
        out["definition"] = definition
    return out


def _next_fire(conn, job_id: int) -> float | None:
    row = conn.execute("SELECT next_fire FROM schedules WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else row[0]


def get(ctx: Context, name: str) -> dict:
    """The job ``name`` of the caller's environment with its current definition; needs READ."""
    job = _job_row(ctx, name)
    acl.require(ctx, resource(job["environment"], job["name"]), "read", "get job")
    return _job_dict(ctx.conn, job)


def ls(ctx: Context, type: str | None = None, all_environments: bool = False) -> list[dict]:
    """The jobs the caller may read, in the caller's environment (or all of them)."""
    if type is not None and type not in TYPES:
        raise ValueError(f"invalid job type {type!r}: expected one of {', '.join(TYPES)}")
    sql, args = "SELECT * FROM jobs WHERE 1 = 1", []
    if not all_environments:
        sql += " AND environment = ?"
        args.append(ctx.environment)
    if type is not None:
        sql += " AND type = ?"
        args.append(type)
    sql += " ORDER BY environment, name"
    return [
        _job_dict(ctx.conn, job, with_definition=False)
        for job in ctx.conn.execute(sql, args).fetchall()
        if acl.allowed(ctx, resource(job["environment"], job["name"]), "read")
    ]


def versions(ctx: Context, name: str) -> list[dict]:
    """Every version of a job, oldest first, marking the current one; needs READ."""
    job = _job_row(ctx, name)
    acl.require(ctx, resource(job["environment"], job["name"]), "read", "list versions")
    rows = ctx.conn.execute(
        "SELECT version, definition, created_at, created_by FROM job_versions"
        " WHERE job_id = ? ORDER BY version",
        (job["job_id"],),
    ).fetchall()
    return [
        {
            "version": r["version"],
            "current": r["version"] == job["current_version"],
            "created_at": r["created_at"],
            "created_by": _user_name(ctx.conn, r["created_by"]),
            "definition": json.loads(r["definition"]),
        }
        for r in rows
    ]


# -- saving -----------------------------------------------------------------------


def save(
    ctx: Context, definition: Mapping, acl_: dict | None = None, update_existing: bool = False
) -> dict:
    """Save ``definition`` as a new version (the current one) of its job; return the job.

    A new job gets ``acl_``, or every permission for its creator. An existing job needs
    WRITE; its type may change only with ``update_existing=True``. ``acl_`` given for an
    existing job replaces its ACL.
    """
    d = check_definition(ctx, definition)
    _may_run_as(ctx, d["run_as"])
    new_acl = acl.normalise(acl_) if acl_ is not None else None
    with store.transaction(ctx.conn) as conn:
        job = _save(ctx, conn, d, new_acl, update_existing)
        return _job_dict(conn, job)


def _save(ctx: Context, conn, d: dict, new_acl: dict | None, update_existing: bool):
    res = resource(d["environment"], d["name"])
    now = time.time()
    job = conn.execute(
        "SELECT * FROM jobs WHERE name = ? AND environment = ?", (d["name"], d["environment"])
    ).fetchone()
    if new_acl is not None:
        acl.check_principals(conn, new_acl)
    if job is None:
        desired = "stopped" if d["type"] in LONG_RUNNING else None
        job_id = store.insert(
            conn,
            "INSERT INTO jobs (name, environment, type, current_version, desired_state, owner_id,"
            " created_at) VALUES (?, ?, ?, 1, ?, ?, ?)",
            (d["name"], d["environment"], d["type"], desired, ctx.caller.user_id, now),
        )
        version = _next_version(conn, job_id)
        acl.replace(conn, res, new_acl if new_acl is not None else acl.owner_acl(ctx.caller.user_id))
    else:
        acl.require(ctx, res, "write", "save a new version")
        if job["type"] != d["type"]:
            if not update_existing:
                raise ValueError(
                    f"job {d['name']!r} in {d['environment']} is a {job['type']} job, not a"
                    f" {d['type']} job; pass update_existing=True to replace it, or use another name"
                )
            desired = "stopped" if d["type"] in LONG_RUNNING else None
            conn.execute("UPDATE jobs SET type = ?, desired_state = ? WHERE job_id = ?",
                         (d["type"], desired, job["job_id"]))
        job_id = job["job_id"]
        version = _next_version(conn, job_id)
        if new_acl is not None:
            acl.replace(conn, res, new_acl)
    conn.execute(
        "INSERT INTO job_versions (job_id, version, definition, created_at, created_by)"
        " VALUES (?, ?, ?, ?, ?)",
        (job_id, version, json.dumps(d, sort_keys=True), now, ctx.caller.user_id),
    )
    return _make_current(conn, job_id, version, d)


def _next_version(conn, job_id: int) -> int:
    """The job's next version number; a removed version's number is not given out again."""
    conn.execute(
        "UPDATE jobs SET last_version = max(last_version, (SELECT coalesce(max(version), 0)"
        " FROM job_versions WHERE job_id = ?)) + 1 WHERE job_id = ?", (job_id, job_id))
    return conn.execute("SELECT last_version FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0]


def _make_current(conn, job_id: int, version: int, d: dict):
    """Make ``version`` (definition ``d``) the job's current one, with its schedule."""
    conn.execute("UPDATE jobs SET current_version = ? WHERE job_id = ?", (version, job_id))
    schedules.save(conn, job_id, d.get("schedule"))
    return conn.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()


def _version_exists(conn, job, version: int) -> None:
    names.whole_number(version, "version", minimum=1)
    if not conn.execute(
        "SELECT 1 FROM job_versions WHERE job_id = ? AND version = ?", (job["job_id"], version)
    ).fetchone():
        have = [r[0] for r in conn.execute(
            "SELECT version FROM job_versions WHERE job_id = ? ORDER BY version", (job["job_id"],))]
        raise ValueError(
            f"job {job['name']!r} has no version {version}; it has {', '.join(map(str, have))}"
        )


def set_version(ctx: Context, name: str, version: int) -> dict:
    """Make ``version`` the current one again (needs WRITE); later runs use it."""
    names.whole_number(version, "version", minimum=1)
    with store.transaction(ctx.conn) as conn:
        job = _job_row(ctx, name)
        acl.require(ctx, resource(job["environment"], job["name"]), "write", "set the current version")
        _version_exists(conn, job, version)
        d = _definition(conn, job["job_id"], version)
        return _job_dict(conn, _make_current(conn, job["job_id"], version, d))


def promote(ctx: Context, name: str, version: int | None = None) -> dict:
    """Copy a version (default: the current one) of a job to the next environment, where it
    becomes a new, current version; return the job there.

    Needs PROMOTE on the job, and PROMOTE on the job in the next environment if it exists
    there. A job new to that environment gets the ACL of the one promoted.
    """
    job = _job_row(ctx, name)
    src = resource(job["environment"], job["name"])
    acl.require(ctx, src, "promote", "promote")
    target_env = environments.next_environment(job["environment"])
    version = job["current_version"] if version is None else names.whole_number(version, "version", 1)
    with store.transaction(ctx.conn) as conn:
        definition = _definition(conn, job["job_id"], version)
        if not definition:
            raise ValueError(f"job {job['name']!r} has no version {version}")
        definition["environment"] = target_env
        definition["promoted_from"] = {"environment": job["environment"], "version": version}
        target = conn.execute(
            "SELECT * FROM jobs WHERE name = ? AND environment = ?", (job["name"], target_env)
        ).fetchone()
        dst = resource(target_env, job["name"])
        if target is not None:
            acl.require(ctx, dst, "promote", f"promote into {target_env}")
            if target["type"] != job["type"]:
                raise ValueError(
                    f"job {job['name']!r} in {target_env} is a {target['type']} job, not a {job['type']} job"
                )
        target_ctx = Context(ctx.home, conn, ctx.caller, target_env)
        d = check_definition(target_ctx, definition)
        if target is None:
            new = _save(target_ctx, conn, d, acl.get(conn, src), False)
        else:
            new = _save_promoted(target_ctx, conn, d, target)
        return _job_dict(conn, new)


def _save_promoted(ctx: Context, conn, d: dict, target):
    """A new current version of ``target`` (PROMOTE already checked: no WRITE needed)."""
    version = _next_version(conn, target["job_id"])
    conn.execute(
        "INSERT INTO job_versions (job_id, version, definition, created_at, created_by)"
        " VALUES (?, ?, ?, ?, ?)",
        (target["job_id"], version, json.dumps(d, sort_keys=True), time.time(), ctx.caller.user_id),
    )
    return _make_current(conn, target["job_id"], version, d)


# -- runs -------------------------------------------------------------------------


def _check_params(params: Mapping | None) -> dict:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ValueError(f"invalid run parameters {params!r}: expected a dict of name to value")
    out = {}
    for key, value in params.items():
        if not env_text.is_name(key):
            raise ValueError(f"invalid run parameter name {key!r}: use letters, digits and '_'")
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            raise ValueError(f"invalid run parameter {key}={value!r}: use str, int, float or bool")
        if isinstance(value, str):
            env_text.check_value(f"run parameter {key}", value)
        out[key] = value
    return out


def _insert_run(
    ctx: Context, conn, job, trigger: str, params: dict, detail: str | None = None,
    version: int | None = None, scheduled_for: float | None = None,
) -> int:
    version = job["current_version"] if version is None else version
    definition = _definition(conn, job["job_id"], version)
    try:
        run_as = runs_store.run_as_id(conn, definition.get("run_as"), ctx.caller.user_id)
    except ValueError as exc:
        raise ValueError(f"{exc} (job {job['name']!r})") from None
    return runs_store.create(
        conn, job_id=job["job_id"], version=version, run_as=run_as,
        environment=job["environment"], trigger=trigger, params=json.dumps(params),
        scheduled_for=scheduled_for, detail=detail or f"{trigger} by {ctx.user}")


def notify(home: Home) -> bool:
    """Wake the daemon if there is one (False when there is none)."""
    return wakeup.notify(home)


def _active(conn, job_id: int) -> list:
    marks = ",".join("?" * len(ACTIVE))
    return conn.execute(
        f"SELECT * FROM runs WHERE job_id = ? AND parent_run_id IS NULL AND state IN ({marks})"
        " ORDER BY run_id",
        (job_id, *ACTIVE),
    ).fetchall()


def start(
    ctx: Context, name: str, params: Mapping | None = None, trigger: str = "manual",
    scheduled_for: float | None = None, version: int | None = None,
) -> dict:
    """Start a run of the job's current version (or of ``version``); return the run (needs
    OPERATE).

    A service, app or add-in that is already up (a run pending or further) is not started
    twice: its active run is returned, and it is marked to be kept running. Started on
    another version, its runs of other versions are stopped first.
    """
    params = _check_params(params)
    if trigger not in TRIGGERS and not str(trigger).startswith("after:"):
        raise ValueError(f"invalid trigger {trigger!r}: expected one of {', '.join(TRIGGERS)} or after:<job>")
    with store.transaction(ctx.conn) as conn:
        job = _job_row(ctx, name)
        acl.require(ctx, resource(job["environment"], job["name"]), "operate", "start")
        if version is not None and version != job["current_version"]:
            _version_exists(conn, job, version)
            if job["type"] in LONG_RUNNING:
                _request_stop(ctx, conn, [r for r in _active(conn, job["job_id"])
                                          if r["version"] != version], f"version {version} started")
            run_id = _insert_run(ctx, conn, job, trigger, params, version=version,
                                 scheduled_for=scheduled_for)
        else:
            run_id = _start(ctx, conn, job, trigger, params, scheduled_for)
        run = _run_dict(conn, conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone())
    notify(ctx.home)
    return run


def _stopping(conn, run_id: int) -> bool:
    return conn.execute(
        "SELECT 1 FROM run_events WHERE run_id = ? AND state = 'stop-requested'", (run_id,)
    ).fetchone() is not None


def _start(ctx: Context, conn, job, trigger: str, params: dict, scheduled_for=None) -> int:
    if job["type"] in LONG_RUNNING:
        conn.execute("UPDATE jobs SET desired_state = 'running' WHERE job_id = ?", (job["job_id"],))
        up = [r for r in _active(conn, job["job_id"]) if not _stopping(conn, r["run_id"])]
        if up:
            return up[-1]["run_id"]
    return _insert_run(ctx, conn, job, trigger, params, scheduled_for=scheduled_for)


def run(
    ctx: Context, definition: Mapping, acl_: dict | None = None, update_existing: bool = False,
    params: Mapping | None = None,
) -> dict:
    """Save ``definition`` as a new version and start a run of it; return the run.

    A service, app or add-in already running is restarted on the new version.
    """
    d = check_definition(ctx, definition)
    _may_run_as(ctx, d["run_as"])
    params = _check_params(params)
    new_acl = acl.normalise(acl_) if acl_ is not None else None
    with store.transaction(ctx.conn) as conn:
        job = _save(ctx, conn, d, new_acl, update_existing)
        acl.require(ctx, resource(job["environment"], job["name"]), "operate", "run")
        if job["type"] in LONG_RUNNING:
            _request_stop(ctx, conn, _active(conn, job["job_id"]), f"new version {job['current_version']} by {ctx.user}")
        run_id = _start(ctx, conn, job, "manual", params)
        out = _run_dict(conn, conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone())
    notify(ctx.home)
    return out


def _request_stop(ctx: Context, conn, runs: list, detail: str | None = None) -> list[int]:
    """Ask the daemon to stop ``runs``; a run still pending is ended here (nobody owns it yet)."""
    ids = []
    for r in runs:
        ids.append(r["run_id"])
        runs_store.request_stop(conn, r["run_id"], detail or f"stopped by {ctx.user}")
        children = conn.execute(
            f"SELECT * FROM runs WHERE parent_run_id = ? AND state IN ({','.join('?' * len(ACTIVE))})",
            (r["run_id"], *ACTIVE),
        ).fetchall()
        if children:
            _request_stop(ctx, conn, children, detail)
    return ids


def stop(ctx: Context, name: str, run_id: int | None = None) -> list[dict]:
    """Stop the job's active runs (or only ``run_id``); return them (needs OPERATE).

    A service, app or add-in is marked to stay stopped. The daemon kills each run's
    process group and records it "killed" with reason "stopped by <user>".
    """
    if run_id is not None:
        names.whole_number(run_id, "run id")
    with store.transaction(ctx.conn) as conn:
        job = _job_row(ctx, name)
        acl.require(ctx, resource(job["environment"], job["name"]), "operate", "stop")
        runs = _active(conn, job["job_id"])
        if run_id is not None:
            runs = [r for r in runs if r["run_id"] == run_id]
            if not runs:
                _run_row(ctx, run_id)  # NotFoundError if absent
                raise ValueError(f"run {run_id} of job {job['name']!r} is not active")
        elif job["type"] in LONG_RUNNING:
            conn.execute("UPDATE jobs SET desired_state = 'stopped' WHERE job_id = ?", (job["job_id"],))
        ids = _request_stop(ctx, conn, runs)
        out = [_run_dict(conn, conn.execute("SELECT * FROM runs WHERE run_id = ?", (i,)).fetchone()) for i in ids]
    notify(ctx.home)
    return out


def restart(ctx: Context, name: str) -> dict:
    """Stop the job's active runs and start a new one (trigger "restart"); needs OPERATE."""
    with store.transaction(ctx.conn) as conn:
        job = _job_row(ctx, name)
        acl.require(ctx, resource(job["environment"], job["name"]), "operate", "restart")
        _request_stop(ctx, conn, _active(conn, job["job_id"]), f"restart by {ctx.user}")
        if job["type"] in LONG_RUNNING:
            conn.execute("UPDATE jobs SET desired_state = 'running' WHERE job_id = ?", (job["job_id"],))
        run_id = _insert_run(ctx, conn, job, "restart", {})
        out = _run_dict(conn, conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone())
    notify(ctx.home)
    return out


def rerun(ctx: Context, run_id: int, failed_only: bool = False) -> dict:
    """A new run of the same job, version and parameters as ``run_id`` (needs OPERATE).

    With ``failed_only`` (workflow runs), only the tasks that did not succeed run again;
    the others' results are reused (Pachyderm's restart_datum).
    """
    if failed_only:
        _require_run(ctx, _run_row(ctx, run_id), "operate", "rerun failures")
        with store.transaction(ctx.conn) as conn:
            new_id = runs_store.rerun_failures(conn, run_id, ctx.caller.user_id)
        notify(ctx.home)
        return get_run(ctx, new_id, events=False)
    with store.transaction(ctx.conn) as conn:
        old = _run_row(ctx, run_id)
        job = conn.execute("SELECT * FROM jobs WHERE job_id = ?", (old["job_id"],)).fetchone()
        acl.require(ctx, resource(job["environment"], job["name"]), "operate", "rerun")
        if old["parent_run_id"] is not None:
            raise ValueError(f"run {run_id} is a task of workflow run {old['parent_run_id']}; rerun that")
        if job["type"] in LONG_RUNNING:
            if _active(conn, job["job_id"]):
                raise ValueError(f"job {job['name']!r} is running; stop or restart it instead")
            conn.execute("UPDATE jobs SET desired_state = 'running' WHERE job_id = ?", (job["job_id"],))
        new_id = _insert_run(ctx, conn, job, "rerun", json.loads(old["params"] or "{}"),
                             detail=f"rerun of run {run_id} by {ctx.user}", version=old["version"])
        out = _run_dict(conn, conn.execute("SELECT * FROM runs WHERE run_id = ?", (new_id,)).fetchone())
    notify(ctx.home)
    return out


def rm(ctx: Context, name: str) -> None:
    """Remove a job, its versions, runs and logs (needs OPERATE); refused while it runs."""
    with store.transaction(ctx.conn) as conn:
        job = _job_row(ctx, name)
        res = resource(job["environment"], job["name"])
        acl.require(ctx, res, "operate", "remove")
        active = _active(conn, job["job_id"])
        if active:
            ids = ", ".join(str(r["run_id"]) for r in active)
            raise ValueError(f"job {job['name']!r} has active runs ({ids}); stop it first")
        run_ids = [r[0] for r in conn.execute("SELECT run_id FROM runs WHERE job_id = ?", (job["job_id"],))]
        conn.execute("DELETE FROM jobs WHERE job_id = ?", (job["job_id"],))
        acl.remove(conn, res)
    for rid in run_ids:
        shutil.rmtree(ctx.home.run_dir(rid), ignore_errors=True)


def rm_version(ctx: Context, name: str, version: int | None = None) -> dict | None:
    """Remove one version of a job (default: the latest), with its runs and their logs;
    needs OPERATE, and is refused while a run of that version is active.

    The job and its other versions stay; if the version was the current one, the newest
    remaining version becomes current. Removing the last version removes the job (None is
    returned; otherwise the job). Its number is not given to a later version.
    """
    if version is not None:
        names.whole_number(version, "version", minimum=1)
    with store.transaction(ctx.conn) as conn:
        job = _job_row(ctx, name)
        res = resource(job["environment"], job["name"])
        acl.require(ctx, res, "operate", "remove a version")
        if version is None:
            version = conn.execute("SELECT max(version) FROM job_versions WHERE job_id = ?",
                                   (job["job_id"],)).fetchone()[0]
        else:
            _version_exists(conn, job, version)
        active = [r for r in _active(conn, job["job_id"]) if r["version"] == version]
        if active:
            ids = ", ".join(str(r["run_id"]) for r in active)
            raise ValueError(f"version {version} of job {job['name']!r} has active runs ({ids});"
                             " stop them first")
        remaining = conn.execute(
            "SELECT max(version) FROM job_versions WHERE job_id = ? AND version != ?",
            (job["job_id"], version)).fetchone()[0]
        run_ids = [r[0] for r in conn.execute(
            "SELECT run_id FROM runs WHERE job_id = ? AND version = ?", (job["job_id"], version))]
        if remaining is None:
            run_ids = [r[0] for r in conn.execute(
                "SELECT run_id FROM runs WHERE job_id = ?", (job["job_id"],))]
            conn.execute("DELETE FROM jobs WHERE job_id = ?", (job["job_id"],))
            acl.remove(conn, res)
            out = None
        else:
            conn.execute("DELETE FROM runs WHERE job_id = ? AND version = ?",
                         (job["job_id"], version))
            conn.execute("DELETE FROM job_versions WHERE job_id = ? AND version = ?",
                         (job["job_id"], version))
            if job["current_version"] == version:
                job = _make_current(conn, job["job_id"], remaining,
                                    _definition(conn, job["job_id"], remaining))
            out = _job_dict(conn, job)
    for rid in run_ids:
        shutil.rmtree(ctx.home.run_dir(rid), ignore_errors=True)
    return out


def _run_row(ctx: Context, run_id: int):
    names.whole_number(run_id, "run id")
    row = ctx.conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"run {run_id} not found")
    return row


def _require_run(ctx: Context, row, permission: str, action: str):
    job = ctx.conn.execute("SELECT name, environment FROM jobs WHERE job_id = ?", (row["job_id"],)).fetchone()
    acl.require(ctx, resource(job["environment"], job["name"]), permission, action)


def get_run(ctx: Context, run_id: int, events: bool = True) -> dict:
    """A run with its events (state changes, oldest first); needs READ on its job."""
    row = _run_row(ctx, run_id)
    _require_run(ctx, row, "read", "get run")
    out = _run_dict(ctx.conn, row)
    if events:
        out["events"] = [
            dict(r) for r in ctx.conn.execute(
                "SELECT at, state, detail FROM run_events WHERE run_id = ? ORDER BY at, rowid", (run_id,))
        ]
    children = ctx.conn.execute(
        "SELECT * FROM runs WHERE parent_run_id = ? ORDER BY run_id", (run_id,)
    ).fetchall()
    if children:
        out["tasks"] = [_run_dict(ctx.conn, c) for c in children]
    return out


def runs(
    ctx: Context, name: str | None = None, state: str | None = None,
    environment: str | None = None, limit: int = 50, offset: int = 0,
    all_environments: bool = False, include_tasks: bool = False,
) -> list[dict]:
    """Runs, newest first, of the jobs the caller may read.

    Filters: a job ``name``; a ``state`` (or "active", or "terminal"); the ``environment``
    (default: the caller's, unless ``all_environments``); ``limit``/``offset`` page.
    Task runs of workflows are left out unless ``include_tasks``.
    """
    names.whole_number(limit, "limit")
    names.whole_number(offset, "offset")
    sql, args = "SELECT r.* FROM runs r JOIN jobs j ON j.job_id = r.job_id WHERE 1 = 1", []
    if name is not None:
        job = _job_row(ctx, name, environment)
        acl.require(ctx, resource(job["environment"], job["name"]), "read", "list runs")
        sql += " AND r.job_id = ?"
        args.append(job["job_id"])
    elif not all_environments:
        sql += " AND r.environment = ?"
        args.append(environments.normalise(environment or ctx.environment))
    if state is not None:
        states = {"active": ACTIVE, "terminal": TERMINAL}.get(state, (state,))
        known = (*ACTIVE, *TERMINAL, "active", "terminal")
        if state not in known:
            raise ValueError(f"invalid state {state!r}: expected one of {', '.join(known)}")
        sql += f" AND r.state IN ({','.join('?' * len(states))})"
        args += list(states)
    if not include_tasks:
        # For the few active runs, "+" keeps the planner (which has no statistics: no home
        # runs ANALYZE) off the parent index, a walk of every top-level run: the state
        # index finds them and they are sorted. Other filters walk the runs in order.
        sql += f" AND {'+' if state == 'active' else ''}r.parent_run_id IS NULL"
    sql += " ORDER BY r.run_id DESC"
    out: list[dict] = []
    skipped, readable = 0, {}
    for row in ctx.conn.execute(sql, args):
        if row["job_id"] not in readable:
            job = ctx.conn.execute("SELECT name, environment FROM jobs WHERE job_id = ?", (row["job_id"],)).fetchone()
            readable[row["job_id"]] = acl.allowed(ctx, resource(job["environment"], job["name"]), "read")
        if not readable[row["job_id"]]:
            continue
        if skipped < offset:
            skipped += 1
            continue
        if len(out) >= limit:
            break
        out.append(_run_dict(ctx.conn, row))
    return out


def wait(ctx: Context, run_id: int, timeout: float | None = None) -> dict:
    """Wait until ``run_id`` ends (succeeded, failed, killed, lost, skipped); return it.

    Raises TimeoutError after ``timeout`` seconds (None: wait as long as it takes).
    Needs READ on its job.
    """
    if timeout is not None and (isinstance(timeout, bool) or not timeout >= 0):
        raise ValueError(f"invalid timeout {timeout!r}: use seconds >= 0 or None")
    row = _run_row(ctx, run_id)
    _require_run(ctx, row, "read", "wait for run")
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = None
    while row["state"] not in TERMINAL:
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"run {run_id} is still {row['state']} after {timeout:g} s")
        # a run's state changes only with a commit: look again once there is one (or in a second)
        look = time.monotonic() + 1.0
        seen = store.wait_for_commit(ctx.conn, seen, look if deadline is None else min(look, deadline))
        row = _run_row(ctx, run_id)
    return get_run(ctx, run_id)


# -- the job's environment ----------------------------------------------------------


def job_environment_vars(definition: Mapping, run: Mapping, home: Home | None = None) -> dict[str, str]:
    """The variables a job's process gets, as the platform sets them.

    ``definition`` is the run's version (``definition_for_run``); ``run`` a runs row or
    ``get_run`` dict (run_id, version, params, port). The job's env_vars come first; the
    platform's variables win: DATATAILR_JOB_ENVIRONMENT, DATATAILR_JOB_NAME,
    DATATAILR_JOB_TYPE, DATATAILR_RUN_ID, DATATAILR_JOB_VERSION, DATATAILR_BATCH_ARG_<NAME>
    for each run parameter, PORT and DATATAILR_SERVICE_PORT for apps, services and add-ins
    once a port is known, LOCALTAILR_HOME, LOCALTAILR_USER (run_as) and LOCALTAILR_RUN_ID.
    """
    out = {k: _env_text(v) for k, v in (definition.get("env_vars") or {}).items()}
    run_id = str(run["run_id"])
    out.update({
        "DATATAILR_JOB_ENVIRONMENT": environments.normalise(definition.get("environment")),
        "DATATAILR_JOB_NAME": str(definition["name"]),
        "DATATAILR_JOB_TYPE": str(definition["type"]),
        "DATATAILR_RUN_ID": run_id,
        "DATATAILR_JOB_VERSION": str(run["version"]),
        "LOCALTAILR_RUN_ID": run_id,
    })
    if definition.get("run_as"):
        out["LOCALTAILR_USER"] = str(definition["run_as"])
    params = run["params"] if "params" in run.keys() else None
    if isinstance(params, str):
        params = json.loads(params or "{}")
    for key, value in (params or {}).items():
        if value is not None:
            out[f"DATATAILR_BATCH_ARG_{key.upper()}"] = _env_text(value)
    port = run["port"] if "port" in run.keys() else None
    if port and definition.get("type") in LONG_RUNNING:
        out["PORT"] = out["DATATAILR_SERVICE_PORT"] = str(port)
    if home is not None:
        out["LOCALTAILR_HOME"] = str(home.root)
    return out


def _env_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)
