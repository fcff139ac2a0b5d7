"""``/api/<cmd>/<sub>``: the platform's operations as JSON, over the same service layer.

Reads are GET (arguments in the query string); actions are POST (arguments as JSON,
or as a form from the status page, which is then sent back to ``next``). Answers are
JSON; a blob's content is sent as bytes. Errors: 400 for bad input (ValueError), 403
for what the caller may not do, 404 for what does not exist, each as ``{"error": ...}``.
Secret values appear only in ``secret/get`` for a caller with READ, never in listings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
)
from werkzeug.exceptions import HTTPException

from ..core import names
from ..core.errors import DiskFullError, NotFoundError
from ..core.errors import PermissionError as LtPermissionError
from ..core.runs import TERMINAL
from ..platform import blob, groups, health, jobs, kv, logs, tags, users
from ..platform import status as queries
from ..platform.context import Context
from .security import caller_context

bp = Blueprint("api", __name__, url_prefix="/api")

# (cmd, sub) -> (method, handler(ctx) -> result)
ROUTES: dict[tuple[str, str], tuple[str, Callable[[Context], object]]] = {}


def op(cmd: str, sub: str, method: str = "GET"):
    def register(fn):
        ROUTES[(cmd, sub)] = (method, fn)
        return fn
    return register


# -- arguments ----------------------------------------------------------------------


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(raw: bytes) -> object:
    """A JSON body, strictly: NaN and Infinity (which Python's json would accept) are refused;
    ValueError says what is wrong."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("the request body is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"the request body is not valid JSON: {exc}") from None


def _source() -> dict:
    if request.method == "GET":
        return request.args.to_dict()
    if "body" not in g:
        data = None
        if request.is_json:
            raw = request.get_data(cache=True)
            data = parse_json(raw) if raw.strip() else None
        if data is None:
            data = request.form.to_dict() if request.form else {}
        if not isinstance(data, dict):
            raise ValueError("the request body must be a JSON object")
        g.body = {**request.args.to_dict(), **data}
    return g.body


def arg(name: str, default=..., kind: type = str):
    """Argument ``name`` of the request; ValueError naming it when missing or malformed."""
    value = _source().get(name, default)
    if value is ...:
        raise ValueError(f"missing argument {name!r}")
    if value is None or value == default:
        return value
    if kind is int:
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            value = int(value)
        return names.whole_number(value, f"argument {name!r}", minimum=names.INT_MIN)
    if kind is bool and not isinstance(value, bool):
        return str(value).lower() in ("1", "true", "yes", "on")
    if kind in (dict, list) and not isinstance(value, kind):
        raise ValueError(f"argument {name!r} must be a JSON {kind.__name__}, not {value!r}")
    return value


def _environment() -> str | None:
    src = _source()
    return src.get("environment") or src.get("env") or None


# -- the one route ----------------------------------------------------------------------


@bp.route("/health")
def health_route():
    return jsonify(health.status(current_app.config["LOCALTAILR_HOME"], current_app.config["STARTED"]))


@bp.route("/<cmd>/<sub>", methods=["GET", "POST"])
def dispatch(cmd: str, sub: str):
    found = ROUTES.get((cmd, sub))
    if found is None:
        known = ", ".join(f"{c}/{s}" for c, s in sorted(ROUTES))
        return _error(404, f"no operation {cmd}/{sub}: known are {known}")
    method, fn = found
    if request.method != method:
        return _error(405, f"{cmd}/{sub} is {method}")
    try:
        ctx = caller_context(_environment())
        result = fn(ctx)
    except LtPermissionError as exc:
        return _error(403, str(exc))
    except PermissionError as exc:
        return _error(403, str(exc))
    except NotFoundError as exc:
        return _error(404, str(exc))
    except DiskFullError as exc:
        return _error(507, str(exc))  # Insufficient Storage
    except (ValueError, TypeError, OverflowError) as exc:
        return _error(400, str(exc))
    if isinstance(result, Response):
        return result
    if request.method == "POST" and not request.is_json and request.form:
        return redirect(_next(result), code=303)
    return jsonify(result)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    """Whatever else goes wrong is still one JSON error (and a traceback in the log)."""
    if isinstance(exc, HTTPException):
        return _error(exc.code or 500, exc.description or exc.name)
    current_app.logger.exception("%s %s failed", request.method, request.path)
    return _error(500, f"internal error ({type(exc).__name__}); the server's log has the details")


def _error(status: int, message: str):
    if request.method == "POST" and request.form and not request.is_json:
        return render_template("error.html", status=status, message=message), status
    response = jsonify({"error": message})
    response.status_code = status
    return response


def _next(result: object) -> str:
    """Where a form goes after its action: ``next`` (a local path), or the new run's page."""
    target = request.form.get("next", "/")
    if target == "@run":
        run = result[0] if isinstance(result, list) and result else result
        if isinstance(run, dict) and "run_id" in run:
            return f"/runs/{int(run['run_id'])}"
        target = "/"
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/"
    return target


# -- user and group ---------------------------------------------------------------------

op("user", "ls")(lambda ctx: users.ls(ctx))
op("user", "get")(lambda ctx: users.get(ctx, arg("name")))
op("user", "exists")(lambda ctx: users.exists(ctx, arg("name")))


@op("user", "add", "POST")
def user_add(ctx):
    return users.add(ctx, arg("name"), first_name=arg("first_name", None), last_name=arg("last_name", None),
                     email=arg("email", None), password=arg("password", None),
                     groups=arg("groups", None, list), is_system_user=arg("is_system_user", False, bool))


op("user", "rm", "POST")(lambda ctx: users.remove(ctx, arg("name")))
op("user", "disable", "POST")(lambda ctx: users.set_disabled(ctx, arg("name"), True))
op("user", "enable", "POST")(lambda ctx: users.set_disabled(ctx, arg("name"), False))

op("tag", "ls")(lambda ctx: tags.ls(ctx, arg("prefix", "")))
op("tag", "get")(lambda ctx: {"name": arg("name"), "value": tags.get(ctx, arg("name"))})
op("tag", "set", "POST")(lambda ctx: tags.set(ctx, arg("name"), arg("value")))
op("group", "ls")(lambda ctx: groups.ls(ctx))
op("group", "get")(lambda ctx: groups.get(ctx, arg("name")))
op("group", "exists")(lambda ctx: groups.exists(ctx, arg("name")))
op("group", "is-member")(lambda ctx: groups.is_member(ctx, arg("name"), arg("user")))
op("group", "add", "POST")(lambda ctx: groups.add(ctx, arg("name")))
op("group", "rm", "POST")(lambda ctx: groups.remove(ctx, arg("name")))
op("group", "add-users", "POST")(lambda ctx: groups.add_users(ctx, arg("name"), arg("users", kind=list)))
op("group", "rm-users", "POST")(lambda ctx: groups.remove_users(ctx, arg("name"), arg("users", kind=list)))


# -- kv and secret ----------------------------------------------------------------------


def _acl_arg(name: str = "acl") -> dict | None:
    value = arg(name, None, dict)
    return value


def _kv_ops(cmd: str, kind: kv.Kind) -> None:
    op(cmd, "ls")(lambda ctx: kv.ls(ctx, kind=kind))
    op(cmd, "acls")(lambda ctx: kv.acls(ctx, arg("key"), kind=kind))
    op(cmd, "put", "POST")(lambda ctx: kv.put(ctx, arg("key"), arg("value"), _acl_arg(), kind=kind))
    op(cmd, "rm", "POST")(lambda ctx: kv.delete(ctx, arg("key"), kind=kind))
    op(cmd, "set-acls", "POST")(lambda ctx: kv.set_acls(ctx, arg("key"), arg("acl", kind=dict), kind=kind))
    op(cmd, "add-acls", "POST")(lambda ctx: kv.add_acls(ctx, arg("key"), arg("acl", kind=dict), kind=kind))


_kv_ops("kv", kv.KEYS)
_kv_ops("secret", kv.SECRETS)
op("kv", "get")(lambda ctx: kv.get(ctx, arg("key"), version=arg("version", None, int)))


@op("secret", "get")
def secret_get(ctx):
    """A secret's value, for a caller with READ (scripts only: the pages never show one)."""
    return kv.get(ctx, arg("key"), kind=kv.SECRETS)


# -- blob ------------------------------------------------------------------------------

op("blob", "ls")(lambda ctx: blob.ls(ctx, arg("path", "")))
op("blob", "exists")(lambda ctx: blob.exists(ctx, arg("name")))
op("blob", "stat")(lambda ctx: blob.stat(ctx, arg("name")))
op("blob", "get-acl")(lambda ctx: blob.get_acl(ctx, arg("name")))
op("blob", "rm", "POST")(lambda ctx: blob.delete(ctx, arg("name")))
op("blob", "set-acl", "POST")(lambda ctx: blob.set_acl(ctx, arg("name"), arg("acl", kind=dict)))


@op("blob", "get")
def blob_get(ctx):
    """The blob's bytes (its current version, or ``version``), streamed, always as an attachment
    of type application/octet-stream."""
    name, version = arg("name"), arg("version", None, int)
    info = blob.stat(ctx, name, version)
    f = blob.open_blob(ctx, name, version)
    return send_file(f, mimetype="application/octet-stream", as_attachment=True,
                     download_name=name.rsplit("/", 1)[-1], etag=info["sha256"])


@op("blob", "put", "POST")
def blob_put(ctx):
    """The request body (raw bytes) as blob ``?name=``; or JSON ``{"name", "data"}`` with text."""
    if request.is_json:
        return blob.put(ctx, arg("name"), arg("data"), _acl_arg())
    return blob.put(ctx, request.args.get("name") or arg("name"), request.stream)


# -- job, run and log ------------------------------------------------------------------


def _run_id() -> int:
    return arg("run_id", kind=int)


op("job", "ls")(lambda ctx: jobs.ls(ctx, type=arg("type", None), all_environments=arg("all", False, bool)))
op("job", "get")(lambda ctx: jobs.get(ctx, arg("name")))
op("job", "versions")(lambda ctx: jobs.versions(ctx, arg("name")))
op("job", "runs")(lambda ctx: jobs.runs(
    ctx, name=arg("name", None), state=arg("state", None), environment=_environment(),
    limit=arg("limit", 50, int), offset=arg("offset", 0, int),
    all_environments=arg("all", False, bool), include_tasks=arg("tasks", False, bool)))
op("job", "save", "POST")(lambda ctx: jobs.save(
    ctx, arg("definition", kind=dict), _acl_arg(), update_existing=arg("update_existing", False, bool)))
op("job", "run", "POST")(lambda ctx: jobs.run(
    ctx, arg("definition", kind=dict), _acl_arg(), update_existing=arg("update_existing", False, bool),
    params=arg("params", None, dict)))
op("job", "start", "POST")(lambda ctx: jobs.start(ctx, arg("name"), params=arg("params", None, dict)))
op("job", "stop", "POST")(lambda ctx: jobs.stop(ctx, arg("name"), run_id=arg("run_id", None, int)))
op("job", "restart", "POST")(lambda ctx: jobs.restart(ctx, arg("name")))
op("job", "promote", "POST")(lambda ctx: jobs.promote(ctx, arg("name"), arg("version", None, int)))
op("job", "rm", "POST")(lambda ctx: jobs.rm(ctx, arg("name")))
op("job", "set-version", "POST")(lambda ctx: jobs.set_version(ctx, arg("name"), arg("version", kind=int)))


op("job", "rerun", "POST")(lambda ctx: jobs.rerun(ctx, _run_id(), arg("failed_only", False, bool)))


op("run", "get")(lambda ctx: jobs.get_run(ctx, _run_id()))
op("run", "metrics")(lambda ctx: queries.metrics(ctx, _run_id(), arg("seconds", 600, int)))
op("log", "read")(lambda ctx: {"text": logs.read(
    ctx, run_id=arg("run_id", None, int), job=arg("job", None), stderr=_stderr(),
    tail=arg("tail", None, int))})


def _stderr() -> bool:
    stream = arg("stream", "stdout")
    if stream not in ("stdout", "stderr"):
        raise ValueError(f"invalid stream {stream!r}: expected stdout or stderr")
    return stream == "stderr" or arg("stderr", False, bool)


@op("log", "tail")
def log_tail(ctx):
    """What a run printed since ``cursor`` (none: its last ``lines`` lines), with the new cursor and
    the run's state; the page polls this to follow a log."""
    run_id = _run_id()
    text, cursor = logs.read_from(ctx, run_id, _stderr(), arg("cursor", ""))
    if not arg("cursor", ""):
        lines = arg("lines", 200, int)
        text = "".join(text.splitlines(keepends=True)[-lines:]) if lines else ""
    state = jobs.get_run(ctx, run_id, events=False)["state"]
    return {"run_id": run_id, "text": text, "cursor": cursor, "state": state,
            "ended": state in TERMINAL, "at": time.time()}

