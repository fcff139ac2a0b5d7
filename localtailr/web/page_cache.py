"""Rendered pages kept while nothing they show can have changed.

A page is kept under the request's inputs (who asks, as whom, which environment) and served
again while its version is the same: the store's change stamp (any commit changes it), the
daemon's ``daemon.json`` (a daemon started or stopped) and the current second (times shown
as "5s ago" and uptimes, whose smallest unit is the second; a dead daemon's process too).
Under many clients the page is rendered about once a second instead of once a request.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable

from ..core.home import Home
from ..platform import changes

MAX_PAGES = 256
PAGE_CACHE = "localtailr.pages"  # its key in app.extensions


class PageCache:
    """Pages of one home's app: ``page(key, render)`` returns the kept body or renders it."""

    def __init__(self, home: Home):
        self.home = home
        self._pages: dict[Hashable, tuple[tuple, str]] = {}
        self._lock = threading.Lock()

    def version(self) -> tuple:
        try:
            st = os.stat(self.home.root / "daemon.json")
            daemon = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            daemon = None
        return changes.stamp(self.home), daemon, int(time.time())

    def page(self, key: Hashable, render: Callable[[], str]) -> str:
        """The body kept for ``key`` at the current version, else ``render()``. The version
        is read before rendering: a commit made during it gives a new version, so a body
        is never kept under a version newer than what it shows."""
        version = self.version()
        hit = self._pages.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        body = render()
        with self._lock:
            if len(self._pages) >= MAX_PAGES:
                self._pages.clear()
            self._pages[key] = (version, body)
        return body
