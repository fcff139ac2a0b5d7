"""The status page: HTML views over the service layer (they read; actions post to ``/api``)."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Response, current_app, render_template, request

from ..core import environments
from ..core.errors import NotFoundError
from ..core.errors import PermissionError as LtPermissionError
from ..core.runs import LONG_RUNNING, TERMINAL
from ..platform import (
    acl,
    blob,
    blob_history,
    commits,
    groups,
    health,
    jobs,
    kv,
    lineage,
    logs,
    results,
    users,
)
from ..platform import status as queries
from . import svg
from .page_cache import PAGE_CACHE
from .security import USER_HEADER, caller_context, requested_environment

bp = Blueprint("pages", __name__)

PAGE_SIZE = 25
FAILED = ("failed", "lost")
HISTORY = 30  # runs in a job's history chart
LOG_PAGE = 256 * 1024  # bytes of a log rendered with its page (the script follows the rest)
SHORT_REPR = 400


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


def _sql_page(fetch, count, size: int) -> tuple[list, dict]:
    """One page of a listing paged in SQL, without counting it: ``fetch(limit, offset)``
    reads one row more than the page to know whether there is a next. Only a page past
    the end counts the rows (``count()``), to show the last page instead."""
    page = _page()
    rows = fetch(size + 1, (page - 1) * size)
    if not rows and page > 1:
        total = count()
        page = max(1, math.ceil(total / size))
        rows = fetch(size + 1, (page - 1) * size)
    more = len(rows) > size
    return rows[:size], {"page": page, "pages": page + 1 if more else page, "total": None}


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
    # the inputs of caller_context: who asks, as whom, in which environment (an `as`
    # refused raises before anything is kept, and a change of rights changes the version)
    key = ("overview", current_app.config["LOCALTAILR_USER"],
           request.headers.get(USER_HEADER) or request.args.get("as"), requested_environment())
    return current_app.extensions[PAGE_CACHE].page(key, _overview)


def _overview() -> str:
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
    runs = jobs.runs(ctx, name=name, environment=job["environment"], limit=HISTORY)
    schedule = queries.schedules(ctx).get((job["environment"], job["name"]))
    return render_template("job.html", job=job, runs=runs, schedule=schedule,
                           actions=_job_actions(ctx, job), history=svg.history(runs),
                           url=job["url"] if _local_url(job["url"]) else None,
                           definition_json=json.dumps(job["definition"], indent=2, default=str))


def _job_actions(ctx, job: dict) -> list[str]:
    """What the caller may do to the job now: "run", "start", "restart", "stop"."""
    if not results.may(ctx, job["environment"], job["name"], "operate"):
        return []
    up = job["status"] in jobs.ACTIVE or job["status"] == "crash-looping"
    if job["type"] in LONG_RUNNING:
        return ["restart", "stop"] if up else ["start"]
    return ["run", "stop"] if up else ["run"]


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
    log, cursor = "", ""
    if graph is None:
        log, cursor = logs.read_from(ctx, run_id, stream == "stderr", "")
        if len(log) > LOG_PAGE:
            log = f"… {len(log) - LOG_PAGE} earlier characters not shown …\n" + log[-LOG_PAGE:]
    result = results.result_repr(ctx, run_id) if run["parent_run_id"] else None
    exit_said = run["exit_code"] is not None and f"exit code {run['exit_code']}" in (run["reason"] or "")
    ids = [t["run_id"] for t in graph["tasks"].values()] if graph else [run_id]
    io = {i: lineage.run_io(ctx, i) for i in ids}  # what each task (or the run) read and wrote
    return render_template(
        "run.html", run=run, graph=graph, stream=stream, ran_for=ran_for, log=log, cursor=cursor, io=io,
        active=run["state"] not in TERMINAL, result=result, short_repr=SHORT_REPR,
        may_operate=results.may(ctx, run["environment"], run["job"], "operate"),
        show_exit_code=run["exit_code"] is not None and not exit_said)


@bp.route("/runs/<int:run_id>/result.txt")
def run_result(run_id: int):
    """The repr the task's own process wrote of its result (never the pickle, never unpickled)."""
    text = results.result_repr(caller_context(), run_id)
    if text is None:
        raise NotFoundError(f"run {run_id} stored no result")
    return Response(text, mimetype="text/plain", headers={
        "Content-Disposition": f'attachment; filename="run-{run_id}-result.txt"'})


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
    reprs = {n: results.result_repr(ctx, t["run_id"]) for n, t in latest.items() if t["state"] == "succeeded"}
    return {"svg": svg.dag(names, edges, states, links), "tasks": latest, "results": reprs}


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


def _acl_text(ctx, acl_: dict, names: dict[int, str] | None = None) -> str:
    names = {} if names is None else names  # principal -> name, shared by a page's rows

    def name(p: int) -> str:
        if p not in names:
            names[p] = groups.principal_name(ctx, p)
        return names[p]

    return acl.describe({perm: [name(p) for p in principals] for perm, principals in acl_.items()})


@bp.route("/kv")
def kv_page():
    env = _env_arg() or "dev"
    ctx = caller_context(env)
    shown, pager = _sql_page(lambda limit, offset: kv.ls(ctx, limit=limit, offset=offset),
                             lambda: kv.count(ctx), 100)
    rows, names = [], {}
    for item in shown:
        value = kv.get(ctx, item["key"])  # listed keys are readable: the service layer says so
        rows.append({"key": item["key"], "value": value if len(value) <= 200 else value[:200] + "…",
                     "acl": _acl_text(ctx, item["acl"], names)})
    return render_template("kv.html", rows=rows, pager=pager, env=env,
                           environments=environments.ENVIRONMENTS)


@bp.route("/secrets")
def secrets_page():
    env = _env_arg() or "dev"
    ctx = caller_context(env)
    shown, pager = _sql_page(
        lambda limit, offset: kv.ls(ctx, kind=kv.SECRETS, limit=limit, offset=offset),
        lambda: kv.count(ctx, kind=kv.SECRETS), 100)
    names: dict[int, str] = {}
    rows = [{"key": s["key"], "acl": _acl_text(ctx, s["acl"], names)} for s in shown]
    return render_template("secrets.html", rows=rows, pager=pager, env=env,
                           environments=environments.ENVIRONMENTS)


@bp.route("/kv/history")
@bp.route("/secrets/history")
def kv_history_page():
    """A key's versions (when, who, which run and, for a plain key, the value; restore for a
    caller with WRITE); a secret's show only who and when."""
    kind = kv.SECRETS if request.path.startswith("/secrets") else kv.KEYS
    ctx = caller_context(_env_arg() or "dev")
    key = request.args.get("key", "")
    versions = kv.history(ctx, key, kind)
    may_write = not kind.secure and acl.allowed(ctx, kv.resource(kind, ctx.environment, key), "write")
    return render_template("kv_history.html", key=key, env=ctx.environment, secret=kind.secure,
                           versions=versions, may_write=may_write)


@bp.route("/blobs")
def blobs_page():
    ctx = caller_context()
    path = request.args.get("path", "")
    shown, pager = _sql_page(lambda limit, offset: blob.page(ctx, path, limit, offset),
                             lambda: blob.count(ctx, path), 100)
    writers = lineage.writers(ctx, [b["name"] for b in shown])
    return render_template("blobs.html", rows=shown, pager=pager, path=path, writers=writers)


@bp.route("/blobs/history")
def blob_history_page():
    """A blob's versions (who and which run wrote each; download, restore) and its readers."""
    ctx = caller_context()
    name = request.args.get("name", "")
    versions = blob_history.history(ctx, name)
    return render_template("blob_history.html", name=name, versions=versions,
                           lineage=lineage.blob(ctx, name),
                           may_write=acl.allowed(ctx, blob.resource(name), "write"))


@bp.route("/commits")
def commits_page():
    """The latest commits the caller may see."""
    return render_template("commits.html", rows=commits.ls(caller_context(), limit=100))


@bp.route("/commits/<int:commit_id>")
def commit_page(commit_id: int):
    return render_template("commit.html", c=commits.show(caller_context(), commit_id))


@bp.route("/blob")
def blob_page():
    ctx = caller_context()
    name = request.args.get("name", "")
    info = blob.stat(ctx, name)
    return render_template("blob.html", blob=info, acl=_acl_text(ctx, blob.get_acl(ctx, name)),
                           may_write=acl.allowed(ctx, blob.resource(name), "write"))


@bp.route("/blob/download")
def blob_download():
    ctx = caller_context()
    name = request.args.get("name", "")
    info = blob.stat(ctx, name)
    f = blob.open_blob(ctx, name)

    def chunks():
        with f:
            while chunk := f.read(1 << 20):
                yield chunk

    filename = name.rsplit("/", 1)[-1].replace('"', "")
    return Response(chunks(), mimetype="application/octet-stream", headers={
        "Content-Length": str(info["size"]), "ETag": f'"{info["sha256"]}"',
        "Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/search")
def search():
    """Jobs, keys and blobs whose name holds the words asked (case does not matter)."""
    ctx = caller_context()
    q = (request.args.get("q") or "").strip()
    found: dict[str, list] = {"jobs": [], "keys": [], "blobs": []}
    if q:
        needle = q.lower()
        found["jobs"] = [j for j in jobs.ls(ctx, all_environments=True)
                         if needle in j["name"].lower() or needle in (j.get("display_name") or "").lower()]
        for env in environments.ENVIRONMENTS:
            found["keys"] += [{"key": k["key"], "environment": env}
                              for k in kv.ls(caller_context(env)) if needle in k["key"].lower()]
        found["blobs"] = [b for b in blob.ls(ctx, "") if needle in b["name"].lower()]
    return render_template("search.html", q=q, found=found,
                           total=sum(len(v) for v in found.values()))


def template_filters(app) -> None:  # noqa: C901 - counts the filters defined inside
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

    @app.template_filter("plural")
    def plural(n, word: str, words: str | None = None) -> str:
        return f"{n} {word if n == 1 else (words or word + 's')}"

    @app.template_filter("zoned")
    def zoned(t, zone: str | None = None) -> str:
        """``t`` in the job's time zone, named (the server's own zone when it has none)."""
        if not t:
            return "-"
        try:
            tz = ZoneInfo(zone) if zone else None
        except (ZoneInfoNotFoundError, ValueError):
            tz = None
        at = datetime.fromtimestamp(t, tz).astimezone(tz)
        return at.strftime("%Y-%m-%d %H:%M:%S ") + (zone if tz and zone else at.strftime("%Z"))

    @app.template_filter("iso")
    def iso(t) -> str:
        return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds") if t else ""

    @app.template_filter("ago")
    def ago(t):
        return "-" if not t else duration(max(0, time.time() - t)) + " ago"

    @app.template_global("page_url")
    def page_url(**changes):
        args = request.args.to_dict()
        args.update({k: v for k, v in changes.items()})
        args = {k: v for k, v in args.items() if v not in ("", None)}
        return request.path + ("?" + urlencode(args) if args else "")

