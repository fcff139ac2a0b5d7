"""``localtailr job ...`` and ``localtailr logs JOB``."""

from __future__ import annotations

import datetime
import time

import click

from ..core.params import parse_params
from ..platform import jobs as job_ops
from ..platform import logs as log_ops
from ..runtime import client
from .common import caller_options, table
from .progress import Progress

RUN_COLUMNS = ["run_id", "job", "version", "state", "trigger", "created", "reason"]


def _when(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _run_rows(runs: list[dict]) -> str:
    rows = [{**r, "created": _when(r["created_at"])} for r in runs]
    return table(rows, RUN_COLUMNS) if rows else "(no runs)"


def _run_text(run: dict) -> str:
    lines = [
        f"run {run['run_id']}: {run['job']} v{run['version']} ({run['environment']}) {run['state']}"
        + (f" - {run['reason']}" if run.get("reason") else ""),
    ]
    for key in ("trigger", "run_as", "pid", "url", "exit_code", "restarts"):
        if run.get(key) not in (None, 0) or key == "trigger":
            lines.append(f"  {key}: {run[key]}")
    for key in ("created_at", "started_at", "ended_at"):
        if run.get(key):
            lines.append(f"  {key.removesuffix('_at')}: {_when(run[key])}")
    for e in run.get("events", []):
        lines.append(f"  {_when(e['at'])}  {e['state']:<15} {e['detail'] or ''}".rstrip())
    for t in run.get("tasks", []):
        lines.append(f"  task {t['task_name']}: run {t['run_id']} {t['state']}")
    return "\n".join(lines)


@click.group()
def job():
    """Jobs: ls, get, runs, run, start, stop, restart, rerun, wait, versions, set-version, promote, rm."""


@job.command("ls")
@click.option("--type", "type_", type=click.Choice(job_ops.TYPES), help="Only jobs of this type.")
@click.option("--all", "all_envs", is_flag=True, help="Every environment, not just the current one.")
@caller_options
def job_ls(opts, type_, all_envs):
    """List the jobs you may read."""
    rows = job_ops.ls(opts.ctx(), type_, all_envs)

    def text(rows):
        shown = [{**r, "next_fire": _when(r["next_fire"]) if r["next_fire"] else None} for r in rows]
        return table(shown, ["name", "environment", "type", "version", "status", "next_fire", "run_as", "url"])

    opts.emit(rows, text)


@job.command("get")
@click.argument("name")
@caller_options
def job_get(opts, name):
    """Show a job and its current definition."""
    data = job_ops.get(opts.ctx(), name)

    def text(d):
        head = {k: v for k, v in d.items() if k != "definition"}
        ep = d["definition"].get("entrypoint") or {}
        head["entrypoint"] = f"{ep.get('module')}:{ep.get('qualname')}" if ep else None
        head["resources"] = d["definition"].get("resources")
        head["created_at"] = _when(head["created_at"])
        width = max(len(k) for k in head)
        return "\n".join(f"{k:<{width}}  {'-' if v is None else v}" for k, v in head.items())

    opts.emit(data, text)


@job.command("runs")
@click.argument("name", required=False)
@click.option("--state", help="Only runs in this state (or 'active', 'terminal').")
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--offset", default=0, type=int)
@click.option("--all", "all_envs", is_flag=True, help="Every environment.")
@click.option("--tasks", is_flag=True, help="Include the task runs of workflows.")
@caller_options
def job_runs(opts, name, state, limit, offset, all_envs, tasks):
    """List runs, newest first (of job NAME, or of every job you may read)."""
    rows = job_ops.runs(opts.ctx(), name, state=state, limit=limit, offset=offset,
                        all_environments=all_envs, include_tasks=tasks)
    opts.emit(rows, _run_rows)


@job.command("run-info")
@click.argument("run_id", type=int)
@caller_options
def job_run_info(opts, run_id):
    """Show a run with its events."""
    opts.emit(job_ops.get_run(opts.ctx(), run_id), _run_text)


@job.command("versions")
@click.argument("name")
@caller_options
def job_versions(opts, name):
    """List the versions of a job (the current one marked)."""
    rows = job_ops.versions(opts.ctx(), name)
    opts.emit(rows, lambda rows: table(
        [{"version": r["version"], "current": "*" if r["current"] else "",
          "created": _when(r["created_at"]), "by": r["created_by"]} for r in rows]))


@job.command("set-version")
@click.argument("name")
@click.argument("version", type=int)
@caller_options
def job_set_version(opts, name, version):
    """Make VERSION the current version of a job."""
    data = job_ops.set_version(opts.ctx(), name, version)
    client.ensure_daemon_for(opts.home, data)
    opts.emit(data, lambda d: f"{d['name']} ({d['environment']}): version {d['version']} is current")


@job.command("promote")
@click.argument("name")
@click.option("--version", type=int, help="The version to promote (default: the current one).")
@caller_options
def job_promote(opts, name, version):
    """Copy a job's version to the next environment (dev → pre → prod)."""
    data = job_ops.promote(opts.ctx(), name, version)
    client.ensure_daemon_for(opts.home, data)
    opts.emit(data, lambda d: f"promoted {d['name']} to {d['environment']} as version {d['version']}")


@job.command("run")
@click.argument("name")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A run parameter (DATATAILR_BATCH_ARG_KEY in the job).")
@caller_options
def job_run(opts, name, params):
    """Start a run of a saved job's current version."""
    run = job_ops.start(opts.ctx(), name, parse_params(params))
    _ensure_daemon(opts)
    opts.emit(run, lambda r: f"run {r['run_id']} of {r['job']}: {r['state']}")


@job.command("start")
@click.argument("name")
@caller_options
def job_start(opts, name):
    """Start a job (a service, app or add-in already up is left running)."""
    run = job_ops.start(opts.ctx(), name)
    _ensure_daemon(opts)
    opts.emit(run, lambda r: f"run {r['run_id']} of {r['job']}: {r['state']}")


@job.command("stop")
@click.argument("name")
@click.option("--run", "run_id", type=int, help="Only this run.")
@caller_options
def job_stop(opts, name, run_id):
    """Stop a job's active runs (a service, app or add-in stays stopped)."""
    runs = job_ops.stop(opts.ctx(), name, run_id)
    client.ensure_daemon_for(opts.home, runs=runs)
    opts.emit(runs, lambda rs: "\n".join(
        f"run {r['run_id']}: {'stopped' if r['state'] == 'killed' else 'stop requested'}" for r in rs
    ) or "nothing was running")


@job.command("restart")
@click.argument("name")
@caller_options
def job_restart(opts, name):
    """Stop a job's active runs and start it again."""
    run = job_ops.restart(opts.ctx(), name)
    _ensure_daemon(opts)
    opts.emit(run, lambda r: f"run {r['run_id']} of {r['job']}: {r['state']}")


@job.command("rerun")
@click.argument("run_id", type=int)
@click.option("--failed-only", is_flag=True,
              help="A workflow run: run only the tasks that did not succeed, reuse the rest.")
@caller_options
def job_rerun(opts, run_id, failed_only):
    """Run again the job, version and parameters of RUN_ID."""
    run = job_ops.rerun(opts.ctx(), run_id, failed_only=failed_only)
    _ensure_daemon(opts)
    opts.emit(run, lambda r: f"run {r['run_id']} of {r['job']} (rerun of {run_id}): {r['state']}")


@job.command("wait")
@click.argument("run_id", type=int)
@click.option("--timeout", type=float, help="Give up after this many seconds (exit 1).")
@caller_options
def job_wait(opts, run_id, timeout):
    """Wait until RUN_ID ends; print it. Exit 0 if it succeeded, 2 if it ended otherwise.

    On a terminal a line shows the run's state and how long it has waited.
    """
    ctx = opts.ctx()
    line = Progress(opts.as_json)
    if line.on:
        run = _wait_showing(ctx, run_id, timeout, line)
    else:
        run = job_ops.wait(ctx, run_id, timeout)
    opts.emit(run, _run_text)
    raise SystemExit(0 if run["state"] == "succeeded" else 2)


def _wait_showing(ctx, run_id: int, timeout: float | None, line: Progress) -> dict:
    started = time.monotonic()
    try:
        while True:
            left = None if timeout is None else timeout - (time.monotonic() - started)
            step = 0.5 if left is None else max(0.0, min(0.5, left))
            try:
                return job_ops.wait(ctx, run_id, step)
            except TimeoutError:
                if left is not None and left <= step:
                    raise
            state = job_ops.get_run(ctx, run_id, events=False)["state"]
            line.show(f"run {run_id}: {state}, waited {time.monotonic() - started:.0f}s")
    finally:
        line.done()


@job.command("rm")
@click.argument("name")
@click.option("--version", type=int,
              help="Remove only this version, with its runs; the job keeps the others.")
@caller_options
def job_rm(opts, name, version):
    """Remove a job with its versions, runs and logs (stop it first)."""
    ctx = opts.ctx()
    if version is None:
        job_ops.rm(ctx, name)
        opts.emit({"removed": name, "environment": ctx.environment}, f"removed {name}")
        return
    left = job_ops.rm_version(ctx, name, version)
    current = left["version"] if left else None
    opts.emit({"removed": name, "version": version, "environment": ctx.environment,
               "current_version": current},
              f"removed version {version} of {name}" + (
                  f"; version {current} is current" if left else "; it was the last: job removed"))


@click.command("logs")
@click.argument("name", required=False)
@click.option("--run", "run_id", type=int, help="This run (default: the job's latest).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the run ends.")
@click.option("--tail", type=int, help="Only the last N lines.")
@click.option("--stderr", is_flag=True, help="The run's stderr instead of stdout.")
@click.option("--task", help="A workflow run: only this task's output.")
@caller_options
def logs(opts, name, run_id, follow, tail, stderr, task):
    """Print a job's (or a run's) output; a workflow's, task by task, each line prefixed
    by its task's name."""
    if name is None and run_id is None:
        raise click.UsageError("give a job NAME or --run ID")
    ctx = opts.ctx()
    if follow:
        for line in log_ops.follow(ctx, run_id, name, stderr=stderr, tail=tail, task=task):
            click.echo(line)
        return
    text = log_ops.read(ctx, run_id, name, stderr=stderr, tail=tail, task=task)
    if opts.as_json:
        opts.emit({"run_id": log_ops.resolve_run(ctx, run_id, name), "text": text})
    else:
        click.echo(text, nl=False)


def _ensure_daemon(opts) -> None:
    client.ensure_daemon(opts.home)
