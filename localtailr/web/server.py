"""Serving the app on loopback: a werkzeug server in a thread (tests, the daemon) or in the foreground.

Request lines are logged by path only: the query string may hold the token (``?token=``),
and a log is no place for it.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from ..core.home import Home
from . import security
from .app import create_app

HOST = "127.0.0.1"
_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"'#]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the value of any ``token=`` in it hidden."""
    return _TOKEN_IN_TEXT.sub(r"\1[hidden]", text)


class RequestHandler(WSGIRequestHandler):
    """Werkzeug's handler, logging the path without its query string and hiding a token
    anywhere else it would log one (a malformed request line is logged as received)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = getattr(self, "path", None)
        if path is None:  # the request line did not parse
            line = redact(getattr(self, "requestline", ""))
        else:
            line = f"{self.command} {urlsplit(path).path} {self.request_version}"
        self.log("info", '"%s" %s %s', line.translate(self._control_char_table), code, size)

    def log(self, type: str, message: str, *args) -> None:
        super().log(type, "%s", redact(message % args if args else message))


def serve(home: Home, port: int = 0, user: str | None = None) -> BaseWSGIServer:
    """A threaded server for ``home``'s app bound to 127.0.0.1:``port`` (0: any free port)."""
    return make_server(HOST, port, create_app(home, user), threaded=True, request_handler=RequestHandler)


def url(server: BaseWSGIServer, home: Home, with_token: bool = True) -> str:
    """The server's address; with ``?token=`` to open in a browser."""
    base = f"http://{HOST}:{server.server_port}/"
    return f"{base}?token={security.token(home)}" if with_token else base


def start_in_thread(server: BaseWSGIServer) -> threading.Thread:
    """Serve in a daemon thread; ``server.shutdown()`` stops it."""
    thread = threading.Thread(target=server.serve_forever, name="localtailr-web", daemon=True)
    thread.start()
    return thread
