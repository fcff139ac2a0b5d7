"""The HTTP seam: what the genuine SDK's remote client (``datatailr login --url ...``,
``python -m datatailr._remote_client.remote_cli``) speaks, served by the daemon's Flask app
under ``/dt`` with the same handlers as the ``dt`` command.

- ``POST /dt/login?response_type=id_token`` with HTTP basic auth (a localtailr user and its
  password) sets the cookie ``X-Datatailr-Oidc-Data``: a JWT (HS256, signed with the home's
  secret key) whose payload names the user (``preferred_username``) and expires in 12 h.
- ``/dt/api/<cmd>/<sub>``: GET puts the arguments in the query string, other methods in a
  JSON body, keyed by the names of the platform's command set; the answer is
  ``{"result": ..., "error": ""}``, or ``{"error": "<one line>"}`` with 400/401/403/404.
  ``job save|run`` take the job JSON as ``data`` (and the module's code as a base64
  tarball, ``repo_archive_b64``); blobs travel base64 (``content_b64``, ``source_file_b64``).
- ``/dt/api/help`` (and ``<cmd>/help``, ``<cmd>/<sub>/help``): the commands.

So the SDK on another machine, logged in to ``http://<laptop>:<port>/dt``, uses this home.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import importlib
import io
import json
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from flask import Blueprint, current_app, jsonify, make_response, request

from ..platform import users as user_ops
from ..platform.context import context
from . import main
from .calling import CALLER

bp = Blueprint("dt_remote", __name__, url_prefix="/dt")
COOKIE = "X-Datatailr-Oidc-Data"
SESSION = 12 * 3600  # seconds a login lasts
FILE_ARGS = {("job", "save"): "job_configuration", ("job", "run"): "job_configuration"}
_SKIP = {"data", "repo_archive_b64", "repo_dir_name", "repo_module_path", "local_hostname",
         "content_b64", "source_file_b64", "source_file_name", "download"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(text: str) -> bytes:
    home = current_app.config["LOCALTAILR_HOME"]
    return bytes.fromhex(user_ops.signature(context(home, "root"), f"dt-jwt:{text}"))


def make_jwt(name: str, now: float | None = None) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps({"preferred_username": name,
                            "exp": int((now or time.time()) + SESSION)}).encode())
    sig = _sign(f"{head}.{body}")
    return f"{head}.{body}.{_b64(sig)}"


def user_of(token: str | None) -> str | None:
    """The user a valid, unexpired JWT names; None otherwise."""
    try:
        head, body, sig = (token or "").split(".")
        want = _sign(f"{head}.{body}")
        if not hmac.compare_digest(want, _unb64(sig)):
            return None
        claims = json.loads(_unb64(body))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(claims, dict) or claims.get("exp", 0) < time.time():
        return None
    name = claims.get("preferred_username")
    return name if isinstance(name, str) else None


def _error(status: int, message: str):
    response = jsonify({"result": None, "error": message})
    response.status_code = status
    return response


@bp.post("/login")
def login():
    auth = request.authorization
    home = current_app.config["LOCALTAILR_HOME"]
    if auth is None or not user_ops.check_password(context(home, "root"), auth.username or "",
                                                   auth.password or ""):
        return _error(401, "invalid user name or password")
    response = make_response(jsonify({"result": {"name": auth.username}, "error": ""}))
    response.set_cookie(COOKIE, make_jwt(auth.username), httponly=True, samesite="Strict",
                        max_age=SESSION)
    return response


@bp.get("/api/help")
@bp.get("/api/<cmd>/help")
@bp.get("/api/<cmd>/<sub>/help")
def help_(cmd: str | None = None, sub: str | None = None):
    lines = [f"dt {c} <sub-command> ..." for c in sorted(main.MODULES) if cmd in (None, c)]
    return jsonify({"result": "\n".join(lines) or f"no command {cmd!r}", "error": ""})


def _argv(cmd: str, sub: str, params: dict, workdir: Path) -> tuple[list[str], bytes | None]:
    """The ``dt`` argument list (and stdin) for a request's parameters."""
    module = importlib.import_module(f"{__package__}.{main.MODULES[cmd]}")
    entry = module.COMMANDS.get(cmd, {}).get(sub)
    if entry is None:
        return [cmd, sub], None  # dt says what is wrong
    sp = entry[0]
    stdin = None
    positionals = []
    if (cmd, sub) in FILE_ARGS and isinstance(params.get("data"), dict):
        positionals.append("file://" + str(_job_file(params, workdir)))
    elif cmd == "blob" and sub == "put":
        stdin = base64.b64decode(params.get("content_b64") or "")
    elif cmd == "blob" and sub == "cp" and params.get("source_file_b64") is not None:
        upload = workdir / Path(str(params.get("source_file_name") or "upload")).name
        upload.write_bytes(base64.b64decode(params["source_file_b64"]))
        params = {**params, "source_file": str(upload)}
    elif cmd == "blob" and sub == "cp" and params.get("download"):
        params = {**params, "destination_bucket": str(workdir / "download")}
    for name in sp.positionals:
        if name in params and name not in _SKIP and name != FILE_ARGS.get((cmd, sub)):
            positionals.append(str(params[name]))
    options = []
    for name, value in params.items():
        if name in sp.positionals or name in _SKIP:
            continue
        if name in sp.flags:
            if value in (True, "True", "true", "1", ""):
                options.append(f"--{name}")
        else:
            options += [f"--{name}", str(value)]
    return [cmd, sub, *positionals, *options], stdin


def _job_file(params: dict, workdir: Path) -> Path:
    job = params["data"]
    archive = params.get("repo_archive_b64")
    if archive:
        code = workdir / "code"
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(archive)), mode="r:gz") as tar:
            tar.extractall(code, filter="data")
        image = job.setdefault("image", {})
        image["path_to_repo"] = str(code)
        image["path_to_module"] = params.get("repo_module_path") or image.get("path_to_module")
    path = workdir / "job.json"
    path.write_text(json.dumps(job))
    return path


@bp.route("/api/<cmd>/<sub>", methods=["GET", "POST", "PUT", "DELETE"])
def api(cmd: str, sub: str):
    user = user_of(request.cookies.get(COOKIE))
    if user is None:
        return _error(401, "not logged in: run 'datatailr login --url <this server>/dt'")
    if cmd not in main.MODULES:
        return _error(404, f"dt: unknown command {cmd!r}")
    params = request.args.to_dict()
    if request.method != "GET":
        body = request.get_json(silent=True)
        if body is not None and not isinstance(body, dict):
            return _error(400, "the request body must be a JSON object")
        params.update(body or {})
    workdir = Path(tempfile.mkdtemp(prefix="localtailr-dt-"))
    token = CALLER.set((current_app.config["LOCALTAILR_HOME"], user, None))
    try:
        argv, stdin = _argv(cmd, sub, params, workdir)
        value, _args = main.call(argv, io.BytesIO(stdin) if stdin is not None else None)
        if hasattr(value, "read"):
            with value:
                value = base64.b64encode(value.read()).decode()
        elif cmd == "blob" and sub == "cp" and params.get("download"):
            value = base64.b64encode((workdir / "download").read_bytes()).decode()
        return jsonify({"result": value, "error": ""})
    except main.Failure as exc:
        return _error(_status(exc.line, exc.code), exc.line)
    except (ValueError, OSError, tarfile.TarError, binascii.Error) as exc:
        return _error(400, f"dt {cmd} {sub}: {exc}")
    finally:
        CALLER.reset(token)
        shutil.rmtree(workdir, ignore_errors=True)


def _status(line: str, code: int) -> int:
    if " lacks " in line:
        return 403
    if "not found" in line or "does not exist" in line:
        return 404
    return 400
