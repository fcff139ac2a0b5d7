"""A home as a whole: create it, and delete it (``localtailr init`` and ``reset``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from .. import store
from ..core.home import Home
from . import acl, status
from .context import Context

KEPT_ON_RESET = ("README.md",)  # the checkout's sandbox/README.md stays, with its folder


def init(home: Home, caller: Callable[[], Context]) -> dict:
    """Create the home (if missing) and its database; ``{"home", "schema_version"}``."""
    home.ensure()
    ctx = caller()
    return {"home": str(home.root), "schema_version": status.home(ctx)["schema_version"]}


def reset(home: Home, caller: Callable[[], Context]) -> None:
    """Delete the home and everything in it (an admin only), but for a README.md there.
    A folder with no localtailr database is refused (nothing deleted)."""
    if not store.is_home(home):
        raise ValueError(f"{home.root} is not a localtailr home (it has no localtailr database"
                         " state.db): nothing deleted")
    acl.require_admin(caller(), "reset the home")
    store.forget(home)
    root = home.root
    for entry in root.iterdir() if root.is_dir() else ():
        if entry.name in KEPT_ON_RESET:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
