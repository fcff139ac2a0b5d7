"""``dt job ...`` and ``dt log read`` over ``platform.jobs`` and ``platform.logs``.

Jobs deployed by the SDK are localtailr jobs (see ``jobdef``); ``dt`` shows every job,
whoever made it, in the SDK's shapes: a workflow is ``type`` batch, its tasks are the
children ``<workflow>-<k>``, run states are the platform's (completed, failed, stopped ...).
"""

from __future__ import annotations

import time

from ..core.errors import NotFoundError
from ..core.schedule import Schedule
from ..platform import acl as acl_ops
from ..platform import jobs as job_ops
from ..platform import logs as log_ops
from ..runtime import client
from . import filters, jobdef
from .args import Args, spec
from .calling import LIST_OPTIONS, ctx, page
from .ids import acl_out

JOB_FIELDS = ("name", "type", "environment", "state", "version", "display_name", "run_as", "id")
RUN_FIELDS = ("type", "environment", "name", "run_id", "id", "state", "start_time", "end_time",
              "job_version", "job_name")
STOP_WAIT = 20.0  # seconds ``job rm`` waits for a job it stopped to end


def _ensure_daemon(c) -> None:
    client.ensure_daemon(c.home, quiet=True)


def _job(c, name: str) -> dict:
    return job_ops.get(c, name)


def _acl(c, job: dict) -> dict:
    return acl_out(acl_ops.get(c.conn, job_ops.resource(job["environment"], job["name"])))


# -- defining -------------------------------------------------------------------------


def _definition(a: Args):
    c = ctx(a)
    data = jobdef.read_job_file(a.positionals[0])
    if data.get("environment"):
        c = ctx(Args([], {"environment": data["environment"]}))
    d, acl = jobdef.definition(c, data, a.options)
    return c, d, acl


def job_save(a: Args):
    c, d, acl = _definition(a)
    job = job_ops.save(c, d, acl, update_existing=True)
    return {"versions": {d["datatailr"]["batch_id"]: job["version"]}, "name": job["name"],
            "version": job["version"]}


def _refuse_excel(d: dict) -> None:
    if d["type"] == "excel":
        raise ValueError("an Excel add-in runs in Datatailr's proprietary Excel bridge "
                         "(dt-excel.sh), which localtailr does not have; it was not started")


def job_run(a: Args):
    c, d, acl = _definition(a)
    _refuse_excel(d)
    run = job_ops.run(c, d, acl, update_existing=True)
    _ensure_daemon(c)
    return {"running": [{"Id": d["datatailr"]["batch_id"], "RunId": run["run_id"]}],
            "version": run["version"]}


def job_start(a: Args):
    c = ctx(a)
    out = []
    for name in a.positionals:
        job = _job(c, name)
        if job["type"] == "excel":
            _refuse_excel(job)
        version = _start_version(c, a, job)
        if version is not None:
            params = {"rundate": a.opt("run-date")} if a.opt("run-date") else None
            run = job_ops.start(c, job["name"], params, version=version)
            out.append({"name": job["name"], "run_id": run["run_id"], "state": run["state"]})
            continue
        if job["schedule"] and not a.flag("now"):
            out.append({"name": job["name"], "scheduled": True, "next_fire": job["next_fire"]})
            continue
        params = {"rundate": a.opt("run-date")} if a.opt("run-date") else None
        run = job_ops.start(c, job["name"], params)
        out.append({"name": job["name"], "run_id": run["run_id"], "state": run["state"]})
    _ensure_daemon(c)
    return out if len(out) != 1 else out[0]


def _start_version(c, a: Args, job: dict) -> int | None:
    """The older version ``--version`` asks to start (None: the current one), as the
    platform allows it; runs of versions older than it are stopped first."""
    text = a.opt("version")
    if text in (None, ""):
        return None
    if not str(text).isdigit():
        raise ValueError(f"invalid --version {text!r}: use a version number")
    version = int(text)
    if len(a.positionals) != 1:
        raise ValueError("--version takes exactly one job")
    if version == job["version"]:
        return None
    if job["schedule"] and not a.flag("now"):
        raise ValueError(f"job {job['name']!r}: only the latest version ({job['version']}) "
                         "can be scheduled; use --now to run an older one once")
    active = [r for r in job_ops.runs(c, job["name"], limit=1000)
              if r["state"] in job_ops.ACTIVE and r["parent_run_id"] is None]
    busy = [r for r in active if r["version"] >= version]
    if busy:
        raise ValueError(f"job {job['name']!r}: run {busy[0]['run_id']} of version "
                         f"{busy[0]['version']} is {busy[0]['state']}; stop it first")
    for r in active:
        job_ops.stop(c, job["name"], run_id=r["run_id"])
    return version


def job_stop(a: Args):
    c = ctx(a)
    stopped = []
    for item in a.positionals:
        if a.flag("by-run-id"):
            run = job_ops.get_run(c, int(item), events=False)
            stopped += job_ops.stop(c, run["job"], run_id=int(item))
        else:
            stopped += job_ops.stop(c, item)
    return [r["run_id"] for r in stopped]


def job_rm(a: Args):
    """Remove and stop: with ``--all`` each job with all its versions; otherwise one version
    of each job (``--version``, default the latest), as the platform does. Runs of what is
    removed are stopped first, waiting up to ``STOP_WAIT``."""
    c = ctx(a)
    text = a.opt("version")
    if text not in (None, ""):
        if a.flag("all"):
            raise ValueError("--version and --all ask for different things: give one")
        if not str(text).isdigit() or int(text) < 1:
            raise ValueError(f"invalid --version {text!r}: use a version number")
        if len(a.positionals) != 1:
            raise ValueError("--version takes exactly one job")
    jobs = [_job(c, name) for name in a.positionals]  # all named jobs exist before any goes
    out = []
    for job in jobs:
        if a.flag("all"):
            _stop_and_wait(c, job, None)
            job_ops.rm(c, job["name"])
            out.append({"name": job["name"], "removed": "all"})
            continue
        have = [v["version"] for v in job_ops.versions(c, job["name"])]
        version = int(text) if text not in (None, "") else max(have)
        if version not in have:
            raise ValueError(f"job {job['name']!r} has no version {version}; "
                             f"it has {', '.join(map(str, have))}")
        _stop_and_wait(c, job, version)
        left = job_ops.rm_version(c, job["name"], version)
        out.append({"name": job["name"], "removed": version,
                    "version": left["version"] if left else None})
    return out if len(out) != 1 else out[0]


def _active_runs(c, name: str, version: int | None) -> list[dict]:
    return [r for r in job_ops.runs(c, name, limit=1000)
            if r["state"] in job_ops.ACTIVE and r["parent_run_id"] is None
            and version in (None, r["version"])]


def _stop_and_wait(c, job: dict, version: int | None) -> None:
    """Stop the job's runs (of ``version`` only, unless None) and wait for them to end. A
    service, app or add-in is stopped as a whole: it runs one version at a time."""
    active = _active_runs(c, job["name"], version)
    if (active or job["desired_state"] == "running") if version is None else (
            active and job["type"] in job_ops.LONG_RUNNING):
        job_ops.stop(c, job["name"])
    else:
        for r in active:
            job_ops.stop(c, job["name"], run_id=r["run_id"])
    deadline = time.monotonic() + STOP_WAIT
    while _active_runs(c, job["name"], version) and time.monotonic() < deadline:
        time.sleep(0.1)


def job_cron(a: Args):
    helpers = {k: a.opt(k) for k in jobdef.SCHEDULE_OPTIONS if a.opt(k) not in (None, "")}
    if not helpers:
        # not "<cron> (<description>)": the SDK then keeps a raw cron_expression it was given
        return "no schedule helpers given: use --at-minutes, --at-hours, --weekdays and the like"
    schedule = Schedule(**jobdef._schedule_values({k.replace("-", "_"): v
                                                   for k, v in helpers.items()}))
    words = ", ".join(f"{k.replace('-', ' ')} {v}" for k, v in helpers.items())
    return f"{schedule.get_cron_string()} ({words})"


def job_promote(a: Args):
    name, version, environment = a.positionals
    c = ctx(Args([], {"environment": environment}))
    job = job_ops.promote(c, name, int(version))
    return {"name": job["name"], "environment": job["environment"], "version": job["version"]}


# -- reading --------------------------------------------------------------------------


def _version_def(c, job: dict, version) -> tuple[dict, int, float]:
    if version in (None, ""):
        return job["definition"], job["version"], job["created_at"]
    for v in job_ops.versions(c, job["name"]):
        if v["version"] == int(version):
            return v["definition"], v["version"], v["created_at"]
    raise NotFoundError(f"job {job['name']!r} has no version {version}")


def job_get(a: Args):
    c = ctx(a)
    name = a.positionals[0]
    try:
        job = _job(c, name)
    except NotFoundError:
        parent, _, child = name.rpartition("-")
        if not (parent and child.isdigit()):
            raise
        return [_child(c, parent, int(child), a.opt("version"))]
    d, version, created = _version_def(c, job, a.opt("version"))
    out = jobdef.job_dict(job, d, _acl(c, job), version, created)
    if job["type"] == "workflow" and a.flag("show-children"):
        out["children_full"] = jobdef.children(job, d)
    return [out]


def _child(c, parent: str, k: int, version) -> dict:
    job = _job(c, parent)
    d, v, created = _version_def(c, job, version)
    for child in jobdef.children(job, d):
        if child["child_number"] == k:
            out = jobdef.job_dict(job, d, _acl(c, job), v, created)
            out.update(child)
            out["type"] = "batch"
            return out
    raise NotFoundError(f"job {parent}-{k} not found: {parent!r} has no task {k}")


def job_ls(a: Args):
    c = ctx(a)
    keep = filters.compile(a.opt("filter"), JOB_FIELDS)
    rows = []
    for job in job_ops.ls(c, all_environments=not a.opt("environment")):
        full = job_ops.get(ctx(Args([], {"environment": job["environment"]})), job["name"])
        row = jobdef.job_dict(full, full["definition"], _acl(c, full), full["version"],
                              full["created_at"])
        if keep(row):
            rows.append(row)
    return page(rows, a)


def job_versions(a: Args):
    c = ctx(a)
    job = _job(c, a.positionals[0])
    return [{"version": v["version"], "current": v["current"],
             "create_time": jobdef.micros(v["created_at"]), "created_by": v["created_by"]}
            for v in job_ops.versions(c, job["name"])]


def job_runs(a: Args):
    c = ctx(a)
    keep = filters.compile(a.opt("filter"), RUN_FIELDS)
    rows = []
    for job in job_ops.ls(c, all_environments=True):
        jc = ctx(Args([], {"environment": job["environment"]}))
        kind = job["type"]
        for run in job_ops.runs(jc, name=job["name"], limit=1_000_000, include_tasks=True):
            if run["parent_run_id"] is None:
                rows.append(jobdef.run_row(run, job["name"], kind))
                continue
            k = _child_number(jc, job, run)
            row = jobdef.run_row(run, f"{job['name']}-{k}", kind)
            row["run_id"] = run["parent_run_id"]  # a task's row belongs to its workflow run
            row["name"] = row["job_name"]  # so "name = <workflow>" lists workflow runs only
            row["task_run_id"] = run["run_id"]
            rows.append(row)
    rows = [r for r in rows if keep(r)]
    rows.sort(key=lambda r: (r["run_id"], r["job_name"]))
    return page(rows, a)


_children: dict[tuple, dict] = {}


def _child_number(c, job: dict, run: dict) -> int | str:
    key = (job["name"], job["environment"], run["version"])
    if key not in _children:
        d = _version_def(c, job_ops.get(c, job["name"]), run["version"])[0]
        tasks = (d.get("datatailr") or {}).get("tasks") or []
        nodes = [n["name"] for n in (d.get("workflow") or {}).get("nodes", [])]
        _children[key] = {t["node"]: t["child_number"] for t in tasks} or \
            {n: i for i, n in enumerate(nodes)}
    return _children[key].get(run["task_name"], run["task_name"])


def job_rerun(a: Args):
    c = ctx(a)
    run_id = int(a.positionals[0])
    old = job_ops.get_run(c, run_id, events=False)
    if a.opt("version") not in (None, "") and int(a.opt("version")) != old["version"]:
        raise ValueError(f"run {run_id} ran version {old['version']}: localtailr reruns a run "
                         "with its own version")
    if a.flag("full") or old["job_type"] != "workflow":
        new = job_ops.rerun(c, run_id)
    else:
        new = job_ops.rerun(c, run_id, failed_only=True)
    _ensure_daemon(c)
    return {"run_id": new["run_id"], "state": new["state"]}


def log_read(a: Args):
    c = ctx(a)
    job = _job(c, a.positionals[0])
    if a.opt("run-id") in (None, ""):
        raise ValueError("give the run with --run-id")
    run_id = int(a.opt("run-id"))
    run = job_ops.get_run(c, run_id, events=False)
    if run["job"] != job["name"]:
        raise ValueError(f"run {run_id} is not a run of job {job['name']!r}")
    if a.opt("child-num") not in (None, ""):
        k = int(a.opt("child-num"))
        tasks = [t for t in run.get("tasks", []) if _child_number(c, job, t) == k]
        if not tasks:
            raise NotFoundError(f"run {run_id} has no output of task {k} (yet)")
        run_id = tasks[-1]["run_id"]
    lines = int(a.opt("lines") or 0) or None
    return log_ops.read(c, run_id, stderr=a.flag("stderr"), tail=lines)


_SCHED = " ".join(jobdef.SCHEDULE_OPTIONS) + " timezone"
COMMANDS = {
    "job": {
        "save": (spec("job_configuration", "json pretty", _SCHED), job_save),
        "run": (spec("job_configuration", "json pretty", _SCHED), job_run),
        "start": (spec("job_name ...", "json pretty now", "environment run-date version"),
                  job_start),
        "stop": (spec("job_name ...", "by-run-id", "environment"), job_stop),
        "rm": (spec("job_name ...", "all", "environment version"), job_rm),
        "cron": (spec("", "", " ".join(jobdef.SCHEDULE_OPTIONS)), job_cron),
        "promote": (spec("job_name version environment"), job_promote),
        "get": (spec("job_name", "show-children utc json pretty", "environment version build-logs"),
                job_get),
        "ls": (spec("", "all utc json pretty", f"{LIST_OPTIONS} environment"), job_ls),
        "versions": (spec("job_name", "json pretty", "environment"), job_versions),
        "runs": (spec("", "utc json pretty", LIST_OPTIONS), job_runs),
        "rerun": (spec("run-id", "full", "version"), job_rerun),
    },
    "log": {
        "read": (spec("process_name", "stderr", "lines run-id environment child-num"), log_read),
    },
}
UNSUPPORTED = {
    "job": {
        "modify": "localtailr changes a job by saving a new version: dt job save",
        "copy": "localtailr copies a job between environments with dt job promote",
        "restore": "localtailr keeps no removed job or version to restore",
        "new": "an interactive job template: write the job JSON and use dt job save",
    },
    "log": {
        "system": "localtailr's own log is the daemon's: <home>/daemon.log",
        "extract": "localtailr has no log index to query: use dt log read",
    },
}
