"""The lock that makes one process build an image key at a time: ``fcntl.flock`` on
``venvs/.locks/<key>.lock``, held by an open file (so a killed builder releases it).

(filelock did this before; importing it costs ~15 ms, a tenth of building a small
environment, and the daemon already holds its own lock this way.) In core, not the store: a
file lock, no database; taken before uv starts, where importing the store (sqlite3) would
delay a cold ``localtailr run`` by ~3 ms.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time

from .home import Home

POLL = 0.05  # seconds between tries while waiting for another builder


class Timeout(TimeoutError):
    """The lock was not acquired in time."""


class KeyLock:
    """An exclusive lock on one file; each object opens its own descriptor, so two locks
    on the same file exclude each other within one process too."""

    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting at most ``timeout`` seconds (0: do not wait).

        Raises:
            Timeout: if another holder kept it that long.
        """
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this object")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise Timeout(f"lock {self.path} is held by another process") from None
                time.sleep(POLL)
            else:
                self._fd = fd
                return

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock


def build_lock(home: Home, key: str) -> KeyLock:
    """The file lock a builder of image ``key`` holds (``venvs/.locks/<key>.lock``)."""
    locks = home.venvs / ".locks"
    locks.mkdir(exist_ok=True)
    return KeyLock(str(locks / f"{key}.lock"))
