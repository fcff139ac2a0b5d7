"""The status page: HTML views over the service layer (they read; actions post to ``/api``)."""

from __future__ import annotations

import json
import math
import time

from flask import Blueprint, current_app, render_template, request

from ..core import environments
from ..core.errors import NotFoundError
from ..core.errors import PermissionError as LtPermissionError
from ..core.runs import LONG_RUNNING, TERMINAL
from ..platform import blob, groups, health, jobs, kv, users
from ..platform import status as queries
from . import svg
from .security import caller_context

bp = Blueprint("pages", __name__)

PAGE_SIZE = 25
FAILED = ("failed", "lost")


def _page() -> int:
    try:
        return max(1, int(request.args.get("page", 1)))
    except ValueError:
        return 1


def _paginate(items: list, size: int) -> tuple[list, dict]:
    page = _page()
    pages = max(1, math.ceil(len(items) / size))
    page = min(page, pages)
    return items[(page - 1) * size: page * size], {"page": page, "pages": pages, "total": len(items)}


def _env_arg() -> str | None:
    value = request.args.get("env") or None
    return environments.normalise(value) if value else None


@bp.errorhandler(NotFoundError)
def _not_found(exc):
    return render_template("error.html", status=404, message=str(exc)), 404


@bp.errorhandler(LtPermissionError)
@bp.errorhandler(PermissionError)
def _forbidden(exc):
    return render_template("error.html", status=403, message=str(exc)), 403


@bp.errorhandler(ValueError)
def _bad(exc):
    return render_template("error.html", status=400, message=str(exc)), 400


@bp.route("/")
def overview():
    ctx = caller_context()
    home = current_app.config["LOCALTAILR_HOME"]
    running = jobs.runs(ctx, state="active", all_environments=True, limit=20)
    failures = sorted(
        (r for state in FAILED for r in jobs.runs(ctx, state=state, all_environments=True, limit=10)),
        key=lambda r: r["run_id"], reverse=True)[:10]
    return render_template(
        "overview.html", health=health.status(home, current_app.config["STARTED"]),
        counts=queries.counts(ctx), running=running, failures=failures, ctx=ctx,
    )


@bp.route("/jobs")
def job_list():
    ctx = caller_context()
    env, type_, state = _env_arg(), request.args.get("type") or None, request.args.get("state") or None
    if env:
        ctx = caller_context(env)
    items = jobs.ls(ctx, type=type_, all_environments=env is None)
    states = sorted({j["status"] for j in items})
    if state:
        items = [j for j in items if j["status"] == state]
    shown, pager = _paginate(items, PAGE_SIZE)
    last = queries.runs_by_id(ctx, [j["last_run_id"] for j in shown if j["last_run_id"]])
    return render_template(
        "jobs.html", jobs=shown, pager=pager, last=last, schedules=queries.schedules(ctx),
        types=jobs.TYPES, states=states, environments=environments.ENVIRONMENTS,
        filters={"env": env or "", "type": type_ or "", "state": state or ""},
    )


@bp.route("/jobs/<environment>/<name>")
def job_page(environment: str, name: str):
    ctx = caller_context(environments.normalise(environment))
    job = jobs.get(ctx, name)
    runs = jobs.runs(ctx, name=name, environment=job["environment"], limit=30)
    schedule = queries.schedules(ctx).get((job["environment"], job["name"]))
    return render_template("job.html", job=job, runs=runs, schedule=schedule,
                           url=job["url"] if _local_url(job["url"]) else None,
                           definition_json=json.dumps(job["definition"], indent=2, default=str))


@bp.route("/runs/<int:run_id>")
def run_page(run_id: int):
    ctx = caller_context()
    run = jobs.get_run(ctx, run_id)
    graph = None
    if run["job_type"] == "workflow" and run["parent_run_id"] is None:
        graph = _workflow_graph(ctx, run)
    stream = "stderr" if request.args.get("stream") == "stderr" else "stdout"
    ran_for = None
    if run["started_at"]:
        ran_for = (run["ended_at"] or time.time()) - run["started_at"]
    return render_template("run.html", run=run, graph=graph, stream=stream, ran_for=ran_for,
                           active=run["state"] not in TERMINAL)


def _workflow_graph(ctx, run: dict):
    """The run's DAG (from its job version's definition), coloured by each task's latest attempt."""
    definition = jobs.definition_for_run(ctx.conn, run["run_id"])
    dag = definition.get("workflow") or {}
    latest: dict[str, dict] = {}
    for task in run.get("tasks", []):
        latest[task["task_name"]] = task  # tasks come oldest first: the last attempt wins
    names = [n["name"] for n in dag.get("nodes", [])] or list(latest)
    names += [n for n in latest if n not in names]
    edges = [tuple(e) for e in dag.get("edges", [])]
    states = {n: latest[n]["state"] for n in latest}
    links = {n: f"/runs/{latest[n]['run_id']}" for n in latest}
    return {"svg": svg.dag(names, edges, states, links), "tasks": latest}


@bp.route("/services")
def services():
    ctx = caller_context()
    rows = []
    for job in jobs.ls(ctx, all_environments=True):
        if job["type"] not in LONG_RUNNING:
            continue
        history = jobs.runs(ctx, name=job["name"], environment=job["environment"], limit=8)
        current = history[0] if history else None
        charts = None
        if current:
            samples = queries.metrics(ctx, [r["run_id"] for r in history], 600)
            charts = {
                "cpu": svg.chart([(m["at"], m["cpu"]) for m in samples], "CPU", "%"),
                "rss": svg.chart([(m["at"], m["rss"] / 2**20) for m in samples], "memory", "MiB"),
            }
        up = None
        if current and current["state"] == "running" and current["started_at"]:
            up = time.time() - current["started_at"]
        url = job["url"] if _local_url(job["url"]) else None
        events = queries.restart_events(ctx, [r["run_id"] for r in history], 5)
        rows.append({"job": job, "current": current, "history": history, "charts": charts,
                     "uptime": up, "url": url, "events": events,
                     "restarts": queries.restart_count(ctx, job["environment"], job["name"])})
    return render_template("services.html", rows=rows)


def _local_url(url: object) -> bool:
    return isinstance(url, str) and url.startswith(
        ("http://127.0.0.1:", "http://localhost:", "http://[::1]:"))


@bp.route("/users")
def people():
    ctx = caller_context()
    user_rows = users.ls(ctx)
    names = {u["user_id"]: u["name"] for u in user_rows}
    group_rows = [{**g, "member_names": [names.get(m, f"#{m}") for m in g["members"]]}
                  for g in groups.ls(ctx)]
    return render_template("users.html", users=user_rows, groups=group_rows)


def _acl_text(ctx, acl_: dict) -> str:
    return "; ".join(
        f"{perm}: {', '.join(groups.principal_name(ctx, p) for p in principals)}"
        for perm, principals in acl_.items())


@bp.route("/kv")
def kv_page():
    env = _env_arg() or "dev"
    ctx = caller_context(env)
    shown, pager = _paginate(kv.ls(ctx), 100)
    rows = []
    for item in shown:
        value = kv.get(ctx, item["key"])  # listed keys are readable: the service layer says so
        rows.append({"key": item["key"], "value": value if len(value) <= 200 else value[:200] + "…",
                     "acl": _acl_text(ctx, item["acl"])})
    return render_template("kv.html", rows=rows, pager=pager, env=env,
                           environments=environments.ENVIRONMENTS)


@bp.route("/secrets")
def secrets_page():
    env = _env_arg() or "dev"
    ctx = caller_context(env)
    rows = [{"key": s["key"], "acl": _acl_text(ctx, s["acl"])} for s in kv.ls(ctx, kind=kv.SECRETS)]
    shown, pager = _paginate(rows, 100)
    return render_template("secrets.html", rows=shown, pager=pager, env=env,
                           environments=environments.ENVIRONMENTS)


@bp.route("/blobs")
def blobs_page():
    ctx = caller_context()
    shown, pager = _paginate(blob.ls(ctx, request.args.get("path", "")), 100)
    return render_template("blobs.html", rows=shown, pager=pager, path=request.args.get("path", ""))


def template_filters(app) -> None:
    """Filters the templates use: times, durations, sizes."""

    @app.template_filter("when")
    def when(t):
        if not t:
            return "-"
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))

    @app.template_filter("duration")
    def duration(s):
        if s is None:
            return "-"
        s = int(s)
        if s < 60:
            return f"{s}s"
        if s < 3600:
            return f"{s // 60}m {s % 60:02d}s"
        if s < 86400:
            return f"{s // 3600}h {s % 3600 // 60:02d}m"
        return f"{s // 86400}d {s % 86400 // 3600:02d}h"

    @app.template_filter("size")
    def size(n):
        if n is None:
            return "-"
        for unit in ("B", "KiB", "MiB", "GiB"):
            if n < 1024 or unit == "GiB":
                return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
            n /= 1024

    @app.template_filter("ago")
    def ago(t):
        return "-" if not t else duration(max(0, time.time() - t)) + " ago"

    @app.template_global("page_url")
    def page_url(**changes):
        args = request.args.to_dict()
        args.update({k: v for k, v in changes.items()})
        args = {k: v for k, v in args.items() if v not in ("", None)}
        from urllib.parse import urlencode

        return request.path + ("?" + urlencode(args) if args else "")

