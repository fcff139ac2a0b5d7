"""The job JSON of ``dt job save|run file://...`` (the SDK's ``Job.to_dict()``) as a
localtailr job definition, and localtailr's jobs and runs in the shapes the SDK reads.

What the SDK sends (``type`` batch with ``jobs`` for a workflow, else service, app or excel)
becomes a localtailr definition whose entrypoint is a launcher of ``localtailr.dt.launch``:
it gives the process the platform's environment for the SDK's runners and calls them.
Everything the launcher needs is kept in the definition under ``"datatailr"``:
the SDK's entrypoint, env vars (``DATATAILR_JOB_ENV_`` removed), the workflow's tasks, the
snapshot of the code the job imports, and the ``dt`` that jobs call.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import sys
import uuid
from pathlib import Path

from ..core import entrypoints
from ..core.resources import parse_memory
from ..core.schedule import Schedule
from ..platform import code
from ..platform import jobs as job_ops
from .ids import acl_in

SDK_REQUIREMENT = "datatailr==0.2.3"
BATCH_NAMESPACE = uuid.UUID("A3FB3D5A-1AD4-4341-AA66-BAC8A26ECBAD")  # batch.platform_job_id
ENV_PREFIX = "DATATAILR_JOB_ENV_"
LAUNCH_MODULE = "localtailr.dt.launch"
TYPES = {"batch": "workflow", "service": "service", "app": "app", "excel": "excel"}
SCHEDULE_OPTIONS = ("at-minutes", "every-minute", "at-hours", "every-hour", "weekdays",
                    "day-of-month", "in-month", "every-month")
STATES = {"pending": "pending", "building": "building", "starting": "starting",
          "running": "running", "succeeded": "completed", "failed": "failed",
          "killed": "stopped", "lost": "failed", "skipped": "did_not_run"}
IMAGE_FIELDS = ("python_version", "python_requirements", "build_script_pre", "build_script_post",
                "branch_name", "commit_hash", "path_to_repo", "path_to_module")


def batch_id(name: str, environment: str) -> str:
    """The SDK's job id: uuid5(namespace, name + environment)."""
    return str(uuid.uuid5(BATCH_NAMESPACE, f"{name}{environment}"))


def read_job_file(reference: str) -> dict:
    """The job JSON named by ``file://<path>`` (or a path); ValueError if it is not one."""
    path = reference[len("file://"):] if reference.startswith("file://") else reference
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the job configuration {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"malformed job JSON in {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"malformed job JSON in {path}: expected an object")
    return data


def _env(items: object, where: str) -> dict[str, str]:
    if items in (None, {}, []):
        return {}
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError(f"malformed job JSON: {where} env must be a list of {{name: value}}")
    out = {}
    for item in items:
        for key, value in item.items():
            out[str(key).removeprefix(ENV_PREFIX)] = str(value)
    return out


def _resources(d: dict, where: str) -> dict:
    memory, cpu = d.get("memory", "128m"), d.get("num_cpus", 0.25)
    if isinstance(memory, int) and not isinstance(memory, bool):
        memory = f"{max(1, memory // 1024**2)}m"
    try:
        return job_ops.check_resources({"memory": memory, "cpu": cpu})
    except ValueError as exc:
        raise ValueError(f"malformed job JSON: {where}: {exc}") from None


def _import_root(image: dict, module: str) -> tuple[str | None, str | None]:
    """(folder to snapshot, how to import from it): the module folder of the SDK's image."""
    repo, rel = image.get("path_to_repo"), image.get("path_to_module")
    if not repo:
        return None, None
    folder = Path(repo) / (rel or ".")
    if not folder.is_dir():
        raise ValueError(f"the job's code folder {folder} does not exist")
    top = module.split(".")[0]
    if folder.name == top and ((folder / "__init__.py").exists() or not (folder / f"{top}.py").exists()):
        return str(folder), "parent"  # a package: import it from its parent
    return str(folder), "self"


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _requirements(text: object) -> str:
    """The image's requirements: the SDK's, without localtailr (a job's environment reaches
    the localtailr that runs it; ``"auto"`` freezes the caller's, which may hold it) and
    with ``datatailr`` pinned unless they name it."""
    if isinstance(text, list):
        text = "\n".join(map(str, text))
    lines = [line for line in str(text or "").splitlines() if line.strip()]
    names = [m.group(1).lower().replace("_", "-") if (m := _NAME.match(line)) else ""
             for line in lines]
    kept = [line for line in lines if "localtailr" not in line.lower()]
    if "datatailr" not in names:
        kept.append(SDK_REQUIREMENT)
    return "\n".join(kept)


def _schedule(job: dict, options: dict) -> dict | None:
    cron = job.get("schedule")
    helpers = {k.replace("-", "_"): options[k] for k in SCHEDULE_OPTIONS if options.get(k)}
    tz = options.get("timezone") or None
    if not cron and not helpers:
        return None
    try:
        if cron:
            return Schedule(cron_expression=str(cron), timezone=tz).to_dict()
        return Schedule(**_schedule_values(helpers), timezone=tz).to_dict()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid schedule: {exc}") from None


def _schedule_values(helpers: dict) -> dict:
    out: dict[str, list[str] | list[int] | int] = {}
    for key, text in helpers.items():
        items = [t.strip() for t in str(text).split(",") if t.strip()]
        if key in ("weekdays", "in_month"):
            out[key] = items
        elif key in ("at_minutes", "at_hours"):
            out[key] = [int(t) for t in items]
        else:
            out[key] = int(items[0])
    return out


def dt_script() -> str | None:
    """The ``dt`` that jobs call: this one when run as a script, else the one on PATH."""
    here = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if here is not None and here.name == "dt" and here.is_file():
        return str(here.resolve())
    found = shutil.which("dt") or str(Path(sys.executable).with_name("dt"))
    return found if os.path.isfile(found) else None


def definition(ctx, job: dict, options: dict) -> tuple[dict, dict | None]:
    """(localtailr definition, stored ACL or None) for the SDK's job JSON ``job``."""
    sdk_type = job.get("type")
    if sdk_type not in TYPES:
        raise ValueError(f"malformed job JSON: type {sdk_type!r}; expected one of "
                         f"{', '.join(TYPES)}")
    name = job.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("malformed job JSON: it needs a name")
    environment = job.get("environment") or ctx.environment
    image = job.get("image") or {}
    if not isinstance(image, dict):
        raise ValueError("malformed job JSON: image must be an object (Image.to_dict())")
    if image.get("build_secret_keys"):
        raise ValueError("build_secret_keys are not supported: localtailr builds images "
                         "without build secrets")
    tasks = job.get("jobs")
    kind = TYPES[sdk_type]
    if not isinstance(tasks, list) or not tasks:
        if kind == "workflow":
            raise ValueError("malformed job JSON: a batch job needs its tasks in 'jobs'")
        tasks = []
    entry = job.get("entrypoint") if kind != "workflow" else tasks[0].get("entrypoint")
    if not isinstance(entry, str) or ":" not in entry:
        raise ValueError(f"malformed job JSON: entrypoint {entry!r}; expected 'module:function'")
    folder, how = _import_root(image, entry.partition(":")[0])
    sys_path = None
    if folder:
        snap = code.snapshot(ctx, folder)
        sys_path = str(snap.parent if how == "parent" else snap)
    env = _env(job.get("env"), "the job's")
    meta = {"type": sdk_type, "entrypoint": entry, "env": env, "sys_path": sys_path,
            "batch_id": batch_id(job_ops.normalise_name(name), environment),
            "dt": dt_script(), "app_section": job.get("app_section") or "",
            "fail_after": job.get("fail_after"), "expire_after": job.get("expire_after")}
    d = {
        "name": name, "display_name": job.get("display_name") or name,
        "type": kind, "environment": environment, "run_as": job.get("run_as") or None,
        "image": {k: image.get(k) for k in IMAGE_FIELDS if k in image}
        | {"python_requirements": _requirements(image.get("python_requirements"))},
        "env_vars": {k: v for k, v in env.items() if not k.upper().startswith(("DATATAILR_",
                                                                              "LOCALTAILR_"))},
        "schedule": _schedule(job, options) if kind == "workflow" else None,
        "datatailr": meta,
    }
    if not d["image"].get("python_version"):
        d["image"]["python_version"] = "3.13"  # the SDK's default for an empty version
    if kind == "workflow":
        d["entrypoint"] = None
        d["resources"] = _resources(tasks[0], "task 0")
        d["workflow"], meta["tasks"] = _workflow(job, tasks)
        for key in ("fail_after", "expire_after"):
            if job.get(key):
                d[key] = job[key] / 1e6
    else:
        qualname = {"service": "service", "app": "app", "excel": "excel"}[kind]
        d["entrypoint"] = {"module": LAUNCH_MODULE, "qualname": qualname, "sys_path": None,
                           "file": None, "kind": "module"}
        d["resources"] = _resources(job, "the job")
        if kind == "app":
            d["framework"] = _framework(env, entry, sys_path)
            meta["framework"] = d["framework"]
    acl = acl_in(job["acl"]) if job.get("acl") else None
    return d, acl


def _framework(env: dict, entry: str, sys_path: str | None) -> str:
    given = entrypoints.framework(env.get("DATATAILR_FRAMEWORK"))
    if given:
        return given
    module = entry.partition(":")[0]
    if sys_path:
        base = Path(sys_path, *module.split("."))
        for file in (base.with_suffix(".py"), base / "__init__.py"):
            if file.is_file():
                found = entrypoints.infer_framework({"file": str(file)})
                if found:
                    return found
    raise ValueError(f"cannot tell the framework of app {entry!r}: give framework= "
                     f"({', '.join(entrypoints.FRAMEWORKS)})")


def _workflow(job: dict, tasks: list) -> tuple[dict, list]:
    nodes: list[dict] = []
    meta: list[dict] = []
    names: dict[int, str] = {}
    for position, t in enumerate(tasks):
        if not isinstance(t, dict):
            raise ValueError(f"malformed job JSON: task {position} is not an object")
        k = t.get("child_number", position)
        if isinstance(k, bool) or not isinstance(k, int):
            raise ValueError(f"malformed job JSON: task {position} has no child_number")
        label = str(t.get("display_name") or t.get("name") or k)
        if "/" in label or "\\" in label or label in names.values() or label in (".", ".."):
            label = f"{job['name']}-{k}"
        names[k] = label
    for t in tasks:
        k = t.get("child_number", tasks.index(t))
        deps = t.get("depends_on") or []
        unknown = [d for d in deps if d not in names]
        if unknown:
            raise ValueError(f"malformed job JSON: task {k} depends on unknown task {unknown[0]}")
        res = _resources(t, f"task {k}")
        after = [names[d] for d in deps]
        nodes.append({
            "name": names[k], "task_name": names[k], "alias": None,
            "function": f"{LAUNCH_MODULE}:batch_task", "source_file": None,
            "args": [], "kwargs": {"child": {"value": k}},
            "memory": res["memory"], "cpu": res["cpu"], "retries": 0, "retry_backoff": 1.0,
            "system_args": ["rundate", "scheduled_time", "started_at", "batch_name", "job_name"],
            "after": after, "depends_on": after,
        })
        meta.append({"child_number": k, "node": names[k], "display_name": t.get("display_name")
                     or names[k], "entrypoint": t.get("entrypoint"),
                     "env": _env(t.get("env"), f"task {k}'s"), "depends_on": list(deps),
                     "memory": t.get("memory"), "num_cpus": t.get("num_cpus")})
    edges = [[a, n["name"]] for n in nodes for a in n["after"]]
    return {"format": 1, "name": job.get("display_name") or job["name"], "nodes": nodes,
            "edges": edges}, meta


# -- shapes the SDK reads --------------------------------------------------------------


def micros(ts: float | None) -> int:
    return int(ts * 1e6) if ts else 0


def _memory_bytes(text) -> int:
    return parse_memory(text) if text else 0


def job_dict(job: dict, definition: dict, acl: dict, version: int, created_at: float) -> dict:
    """One element of ``dt job get``'s list."""
    meta = definition.get("datatailr") or {}
    res = definition.get("resources") or {}
    kind = job["type"]
    out = {
        "display_name": definition.get("display_name") or job["name"], "name": job["name"],
        "environment": job["environment"], "type": "batch" if kind == "workflow" else kind,
        "run_as": definition.get("run_as"), "acl": acl,
        "image": {k: (definition.get("image") or {}).get(k) for k in IMAGE_FIELDS},
        "memory": _memory_bytes(res.get("memory")), "num_cpus": res.get("cpu"),
        "state": state_of_job(job), "create_time": micros(created_at), "version": version,
        "id": meta.get("batch_id") or batch_id(job["name"], job["environment"]),
        "schedule": (definition.get("schedule") or {}).get("cron"),
        "app_section": meta.get("app_section", ""),
    }
    if kind != "workflow":
        out["entrypoint"] = meta.get("entrypoint") or _entry_text(definition.get("entrypoint"))
        out["env"] = [{ENV_PREFIX + k: v} for k, v in (meta.get("env") or
                                                        definition.get("env_vars") or {}).items()]
    return out


def _entry_text(entry: dict | None) -> str | None:
    if not entry:
        return None
    return f"{entry.get('module')}:{entry.get('qualname') or entry.get('module')}"


def children(job: dict, definition: dict) -> list[dict]:
    """``children_full`` of a workflow: one dict per task."""
    meta = definition.get("datatailr") or {}
    out = []
    for t in meta.get("tasks") or []:
        out.append({"name": f"{job['name']}-{t['child_number']}",
                    "display_name": t["display_name"], "child_number": t["child_number"],
                    "entrypoint": t["entrypoint"], "memory": _memory_bytes(t.get("memory")),
                    "num_cpus": t.get("num_cpus"), "depends_on": t["depends_on"],
                    "env": [{ENV_PREFIX + k: v} for k, v in (t.get("env") or {}).items()]})
    return out


def state_of_job(job: dict) -> str:
    status = job.get("status") or ""
    if status == "never run":
        return "created"
    if status == "crash-looping":
        return "failed"
    return STATES.get(status, status or "unknown")


def run_row(run: dict, job_name: str, kind: str) -> dict:
    """One row of ``dt job runs``."""
    return {
        "id": run["run_id"], "run_id": run["run_id"], "job_name": job_name,
        "name": run.get("job"), "type": "batch" if kind == "workflow" else kind,
        "environment": run["environment"], "state": STATES.get(run["state"], run["state"]),
        "job_version": run["version"], "submit_time": micros(run.get("created_at")),
        "start_provisioning_time": micros(run.get("created_at")),
        "start_time": micros(run.get("started_at")), "end_time": micros(run.get("ended_at")),
        "scheduled_time": micros(run.get("scheduled_for")) or None,
        "error_message": (run.get("reason") or "") if run["state"] in ("failed", "killed", "lost")
        else "", "partial_rerun": run.get("trigger") == "rerun",
        "original_run_id": -1, "cost": 0.0, "tried_to_start_time": 0,
    }


def iso(ts: float | None) -> str | None:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat() if ts else None
