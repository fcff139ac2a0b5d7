"""What guards the web app: the Host check, the token, cross-site POSTs, and who the caller is.

- Only loopback Host headers are served (``localhost``, ``127.0.0.1``, ``[::1]``, any
  port); anything else is refused with 403, so a DNS-rebinding page cannot reach us.
- Every request but ``/api/health`` and ``/static/...`` needs the token of the home
  (``<home>/token``, 0600, created on first use). It comes as ``Authorization: Bearer``
  (scripts), as a cookie (browsers), or once as ``?token=``: that sets an HttpOnly,
  SameSite=Strict cookie and redirects to the same URL without the token (as Jupyter does).
- A POST (PUT, DELETE) authenticated by the cookie must come from our own origin
  (``Origin``, else ``Referer``); a Bearer token cannot be sent cross-site, so it needs no check.
- The caller: the token belongs to the home's owner, so requests act as the user the
  server was started as (``LOCALTAILR_USER``, default root). ``X-Localtailr-User`` or
  ``?as=`` acts as another user, allowed only when that default user is an admin.
  The environment is ``X-Localtailr-Env``, ``?env=`` (or a form's ``environment``), default dev.
"""

from __future__ import annotations

import hmac
import os
import secrets
from urllib.parse import urlencode, urlsplit

from flask import Flask, Request, abort, current_app, g, jsonify, redirect, render_template, request

from ..core.errors import PermissionError
from ..core.home import Home
from ..platform.context import Context, context

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
OPEN_PATHS = ("/api/health",)
OPEN_PREFIXES = ("/static/", "/dt/")  # /dt/: its own login (dt/remote.py)
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
USER_HEADER = "X-Localtailr-User"
ENV_HEADER = "X-Localtailr-Env"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


# -- the token --------------------------------------------------------------------

_tokens: dict[str, tuple[tuple[int, int], str]] = {}


def token(home: Home) -> str:
    """The home's web token; created (0600) on first use. Re-read when the file changes."""
    path = home.token_file
    try:
        st = path.stat()
    except FileNotFoundError:
        home.ensure()
        home.write_private(path, secrets.token_urlsafe(32).encode())
        st = path.stat()
    if st.st_mode & 0o077:
        os.chmod(path, 0o600)
    stamp = (st.st_ino, st.st_mtime_ns)
    hit = _tokens.get(str(path))
    if hit and hit[0] == stamp:
        return hit[1]
    value = path.read_text().strip()
    if not value:
        raise ValueError(f"the token file {path} is empty: delete it and a new one is made")
    _tokens[str(path)] = (stamp, value)
    return value


def cookie_name(req: Request) -> str:
    """One cookie per port: two homes served on one machine do not overwrite each other."""
    port = req.host.rsplit(":", 1)[1] if req.host.rsplit(":", 1)[-1].isdigit() else "80"
    return f"localtailr-token-{port}"


def _matches(given: str | None, expected: str) -> bool:
    return given is not None and given != "" and hmac.compare_digest(given.encode(),
                                                                     expected.encode())


# -- checks run before every request ---------------------------------------------


def is_loopback_host(host: str) -> bool:
    """Whether a Host header names this machine's loopback (any port)."""
    host = (host or "").strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name += "]"
        port = rest[1:] if rest.startswith(":") else rest
    else:
        name, _, port = host.partition(":")
    return name in LOOPBACK_NAMES and (port == "" or port.isdigit())


def _same_origin(req: Request) -> bool:
    ours = f"{req.scheme}://{req.host}".lower()
    origin = req.headers.get("Origin")
    if origin is not None:
        return origin.lower() == ours
    referer = req.headers.get("Referer")
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower() == ours
    return False


def _refuse(status: int, message: str):
    if request.path.startswith("/api/") or not request.accept_mimetypes.accept_html:
        response = jsonify({"error": message})
    else:
        response = current_app.response_class(
            render_template("error.html", status=status, message=message), mimetype="text/html"
        )
    response.status_code = status
    return response


def guard():
    """``before_request``: Host, token, cross-site check; returns a response to refuse."""
    if not is_loopback_host(request.host):
        return _refuse(403, "this server answers only to localhost, 127.0.0.1 or [::1]")
    if request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES):
        return None
    expected = token(current_app.config["LOCALTAILR_HOME"])
    given = request.args.get("token")
    if given is not None:
        if not _matches(given, expected):
            return _refuse(401, "wrong token: use the URL printed when the server started")
        if request.method in ("GET", "HEAD"):
            rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
            target = request.path + (f"?{urlencode(rest)}" if rest else "")
            response = redirect(target, code=302)
            _set_cookie(response, expected)
            return response
        g.auth = "query"
        return None
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        if not _matches(auth[7:].strip(), expected):
            return _refuse(401, "wrong bearer token")
        g.auth = "bearer"
        return None
    if _matches(request.cookies.get(cookie_name(request)), expected):
        if request.method in UNSAFE_METHODS and not _same_origin(request):
            return _refuse(403, "cross-site request refused (Origin is not this server)")
        g.auth = "cookie"
        return None
    return _refuse(401, "a token is needed: open the URL with ?token= printed when the server started")


def _set_cookie(response, value: str) -> None:
    response.set_cookie(
        cookie_name(request), value, httponly=True, samesite="Strict", path="/",
        max_age=30 * 24 * 3600,
    )


def headers(response):
    """``after_request``: no caching, no sniffing, no framing, scripts only from us."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


def install(app: Flask) -> None:
    app.before_request(guard)
    app.after_request(headers)


# -- the caller -------------------------------------------------------------------


def requested_environment() -> str | None:
    return (
        request.headers.get(ENV_HEADER)
        or request.args.get("env")
        or (request.form.get("environment") if request.form else None)
        or None
    )


def caller_context(environment: str | None = None) -> Context:
    """The context of this request: its user (see the module docstring) and environment."""
    home: Home = current_app.config["LOCALTAILR_HOME"]
    owner = current_app.config["LOCALTAILR_USER"]
    env = environment or requested_environment()
    wanted = request.headers.get(USER_HEADER) or request.args.get("as")
    if wanted and wanted != owner:
        if not context(home, owner, env).caller.is_admin:
            raise PermissionError(owner, "the platform", "admin", f"act as {wanted!r} over HTTP")
        return context(home, wanted, env)
    return context(home, owner, env)


def forbid(message: str) -> None:
    abort(403, message)
