"""The faces the daemon hosts: the web app on 127.0.0.1 (``--port``, ``LOCALTAILR_PORT``,
else the port the home used last, ``<home>/web.port``, else a free one) and the dt socket,
each given by the process that composes the faces with the runtime
(``localtailr.daemon_main``)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from ...core import settings
from ...core.home import Home
from .log import log

PORT_FILE = "web.port"


def remembered_port(home: Home) -> int:
    """The port the home's page last served on (0: none yet), so its address stays put."""
    try:
        port = int((home.root / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return 0
    return port if 0 < port < 65536 else 0


def remember_port(home: Home, port: int) -> None:
    tmp = home.root / f"{PORT_FILE}.tmp"
    tmp.write_text(f"{port}\n")
    os.replace(tmp, home.root / PORT_FILE)


def start_web(home: Home, port: int | None, serve_web: Callable[[Home, int], Any]) -> Any:
    """Serve the web app through ``serve_web`` in a thread; the server (None if it did not
    start: the daemon runs without its page). A port taken serves on a free one instead."""
    port = port if port is not None else settings.PORT.whole()
    port = port or remembered_port(home)
    try:
        try:
            server = serve_web(home, port)
        except OSError as exc:
            if not port:
                raise
            log(f"port {port} is taken ({exc}); serving the web app on a free port")
            server = serve_web(home, 0)
    except Exception as exc:  # noqa: BLE001 - the daemon runs without its page
        log(f"the web app did not start: {type(exc).__name__}: {exc}")
        return None
    remember_port(home, server.server_port)
    # no poll interval: the thread sleeps until a request comes (``stop_web`` wakes it)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": None},
                     name="web", daemon=True).start()
    return server


def stop_web(server: Any, wait: float = 10.0) -> None:
    """Stop a server ``start_web`` started: ask it to stop, and connect to it (a
    connection made and closed, no request) until it has seen the request."""
    stopper = threading.Thread(target=server.shutdown, name="web-stop", daemon=True)
    stopper.start()
    address = server.server_address[:2]
    deadline = time.monotonic() + wait
    while stopper.is_alive() and time.monotonic() < deadline:
        try:
            socket.create_connection(address, timeout=1.0).close()
        except OSError:
            pass
        stopper.join(0.05)


def start_dt(home: Home, serve_dt: Callable[[Home], Any]) -> Any:
    """Answer ``dt`` calls on ``<home>/dt.sock`` (the dt face's socket, as the web app is
    the web face's); the socket, None if it did not start (``dt`` then runs calls itself)."""
    try:
        return serve_dt(home)
    except OSError as exc:
        log(f"the dt socket did not start: {exc}")
        return None
