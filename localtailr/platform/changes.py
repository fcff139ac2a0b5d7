"""``stamp(home)``: a value that changes whenever anything is committed to the home's store."""

from __future__ import annotations

import os
import sqlite3
import threading

from .. import store
from ..core.home import Home

# One watching connection a home and process, used by every thread under a lock. It never
# writes, so its PRAGMA data_version changes at every commit of any other connection (this
# process's own included), as SQLite documents.
_watchers: dict[str, tuple[int, int, sqlite3.Connection]] = {}
_lock = threading.Lock()
MAX_WATCHED = 16  # homes watched at once (tests make many): beyond, the others are closed


def stamp(home: Home) -> tuple[int, int]:
    """(the database file's inode, its data_version as seen by a connection that never
    writes): equal stamps mean nothing was committed in between."""
    path = str(home.db_path)
    with _lock:
        try:
            ino = os.stat(path).st_ino
        except FileNotFoundError:
            store.connection(home)  # creates the store, as any operation would
            ino = os.stat(path).st_ino
        hit = _watchers.get(path)
        if hit is None or hit[0] != os.getpid() or hit[1] != ino:  # first, forked or a new file
            if hit is not None and hit[0] == os.getpid():
                hit[2].close()
            if len(_watchers) >= MAX_WATCHED:
                for pid, _, old in _watchers.values():
                    if pid == os.getpid():
                        old.close()
                _watchers.clear()
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            hit = _watchers[path] = (os.getpid(), ino, conn)
        return ino, hit[2].execute("PRAGMA data_version").fetchone()[0]
