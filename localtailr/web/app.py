"""``create_app(home)``: the Flask app of a home — the HTTP API and the status page.

Routes:

- ``/dt/login``, ``/dt/api/<cmd>/<sub>`` (their own login, no token): the genuine SDK's
  remote client (``dt/remote.py``).
- ``/api/health`` (no token): daemon, scheduler and supervisor alive, version, uptimes.
- ``/api/<cmd>/<sub>``: the platform's operations (see ``api.py``); reads GET, actions POST.
- ``/`` overview, ``/jobs`` (filters ``type``, ``state``, ``env``; ``page``),
  ``/jobs/<env>/<name>``, ``/runs/<id>`` (log tail, workflow graph), ``/services``,
  ``/users``, ``/kv?env=``, ``/secrets?env=``, ``/blobs``; ``/static/...`` (no token).

Security (``security.py``): loopback Host names only, a token on everything else,
same-origin POSTs, and the caller is the user the server runs as.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask

from ..core.home import Home
from ..dt import remote as dt_remote
from ..platform.context import ROOT_USER, USER_VAR
from . import (
    api,
    api_history,  # noqa: F401 - registers its operations on api's route
    page_cache,
    pages,
    security,
)


def create_app(home: Home | str | os.PathLike | None = None, user: str | None = None) -> Flask:
    """The Flask app serving ``home`` (default: the current home), acting as ``user``
    (default: ``LOCALTAILR_USER`` read now, else root)."""
    if home is None:
        home = Home.current()
    elif not isinstance(home, Home):
        home = Home(Path(home).expanduser().absolute())
    home.ensure()
    here = Path(__file__).resolve().parent
    app = Flask(__name__, static_folder=str(here / "static"), template_folder=str(here / "templates"))
    app.config.update(
        LOCALTAILR_HOME=home,
        LOCALTAILR_USER=user or os.environ.get(USER_VAR) or ROOT_USER,
        STARTED=time.time(),
        SEND_FILE_MAX_AGE_DEFAULT=3600,
        MAX_CONTENT_LENGTH=None,
    )
    security.token(home)  # create the token file now, not on the first request
    security.install(app)
    app.extensions[page_cache.PAGE_CACHE] = page_cache.PageCache(home)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(dt_remote.bp)  # /dt: the genuine SDK's remote client
    pages.template_filters(app)
    return app
