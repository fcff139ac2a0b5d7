"""``python -m localtailr.daemon_main [HOME]``: the daemon's process.

The one place the runtime's daemon and the faces are put together: the daemon serves the
status page and the HTTP API (``web.server.serve``) and the dt socket (``dt.server.serve``)
beside its loop. Everything else
keeps them apart (the runtime imports no face).
"""

from __future__ import annotations

import sys

from .dt import server as dt_server
from .runtime.daemon.loop import main as run_daemon
from .web import server as web_server


def main(argv: list[str] | None = None) -> int:
    return run_daemon(argv, serve_web=web_server.serve, serve_dt=dt_server.serve)


if __name__ == "__main__":
    sys.exit(main())
