"""Serving the app on loopback: a werkzeug server in a thread (tests, the daemon) or in the foreground."""

from __future__ import annotations

import threading

from werkzeug.serving import BaseWSGIServer, make_server

from ..core.home import Home
from . import security
from .app import create_app

HOST = "127.0.0.1"


def serve(home: Home, port: int = 0, user: str | None = None) -> BaseWSGIServer:
    """A threaded server for ``home``'s app bound to 127.0.0.1:``port`` (0: any free port)."""
    return make_server(HOST, port, create_app(home, user), threaded=True)


def url(server: BaseWSGIServer, home: Home, with_token: bool = True) -> str:
    """The server's address; with ``?token=`` to open in a browser."""
    base = f"http://{HOST}:{server.server_port}/"
    return f"{base}?token={security.token(home)}" if with_token else base


def start_in_thread(server: BaseWSGIServer) -> threading.Thread:
    """Serve in a daemon thread; ``server.shutdown()`` stops it."""
    thread = threading.Thread(target=server.serve_forever, name="localtailr-web", daemon=True)
    thread.start()
    return thread
