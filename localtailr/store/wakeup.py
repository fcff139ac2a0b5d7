"""Wake-up of the daemon over a local datagram socket.

``notify(home)`` sends one datagram to the daemon's socket (nothing happens when no daemon
listens); the daemon's loop waits on a ``Listener`` with a timeout, so new work is seen at
once, not by polling.

The socket is ``<home>/daemon.sock``. A Unix socket path is limited to about 107 bytes;
for a longer home the socket lives in the temporary folder, named by a hash of the home
path (``/tmp/localtailr-<hash>.sock``). Both sides compute the same name, and the daemon
records it in ``daemon.json``.
"""

from __future__ import annotations

import hashlib
import os
import select
import socket
import tempfile
from pathlib import Path

from ..core.home import Home

MAX_PATH = 100  # bytes; the kernel's limit is 108 with the terminating NUL


def socket_path(home: Home) -> str:
    """Where the daemon of ``home`` listens."""
    path = str(home.root / "daemon.sock")
    if len(os.fsencode(path)) <= MAX_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(str(home.root))).hexdigest()[:20]
    return str(Path(tempfile.gettempdir()) / f"localtailr-{digest}.sock")


def notify(home: Home) -> bool:
    """Wake the daemon of ``home``; True if a daemon received it, False if none listens."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.sendto(b"w", socket_path(home))
        return True
    except BlockingIOError:
        return True  # its queue is full: it has wake-ups pending already
    except OSError:
        return False
    finally:
        sock.close()


class Listener:
    """The daemon's end: a bound datagram socket to wait on."""

    def __init__(self, home: Home):
        self.path = socket_path(home)
        try:
            os.unlink(self.path)  # a stale socket of a dead daemon (the caller holds the lock)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o600)
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> int:
        """Read every pending datagram; return how many there were."""
        count = 0
        while True:
            try:
                self.sock.recv(64)
                count += 1
            except (BlockingIOError, InterruptedError):
                return count

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a wake-up; True if one came."""
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        return bool(ready) and self.drain() > 0

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
