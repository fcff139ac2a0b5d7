"""The daemon's ``dt`` socket: ``<home>/dt.sock`` (0600, in the 0700 home), where ``dt``
processes (``client``) hand their calls to the running daemon.

A frame is a 4-byte big-endian length and that many bytes (``marshal`` data: the client
then needs neither json nor re). A call is one frame
``{"argv", "user", "environment", "run_id", "stdin"}`` (``run_id``: the job run making the
call, so that what it reads and writes is recorded as that run's) (``stdin``: the byte count that follows, for
``blob put``); the answer is a frame ``{"code", "stderr", "stdout"}`` followed by
``stdout`` bytes. Each call runs on a worker thread (``Workers``: kept between calls, so
each keeps its database connection) through ``main.call`` as the user and environment it names — the same trust as running ``dt`` directly: only the home's owner
can reach the socket.
"""

from __future__ import annotations

import collections
import io
import marshal
import os
import socket
import threading

from ..core.home import Home
from ..platform import provenance
from ..platform.context import ROOT_USER
from . import main
from .calling import CALLER
from .client import HEADER, SOCKET_NAME, _recv


def _answer(conn: socket.socket, home: Home) -> None:
    with conn:
        try:
            request = marshal.loads(_recv(conn, int.from_bytes(_recv(conn, HEADER), "big")))
            if not isinstance(request, dict):
                return
            stdin = request.get("stdin")
            data = io.BytesIO(_recv(conn, int(stdin))) if stdin is not None else None
            argv = [str(a) for a in request["argv"]]
            run_id = request.get("run_id")
            run_id = int(run_id) if run_id is not None and str(run_id).isdigit() else None
        except (OSError, ValueError, EOFError, KeyError, TypeError):
            return
        token = CALLER.set((home, request.get("user") or ROOT_USER, request.get("environment")))
        acting = provenance.acting_for(run_id)
        try:
            value, args = main.call(argv, data)
            out, code, err = main.render(value, args.flag("pretty")), 0, ""
        except main.Failure as exc:
            out, code, err = b"", exc.code, exc.line
        except Exception as exc:  # noqa: BLE001 - rendering failed: still one line
            out, code, err = b"", main.EXIT_FAILED, f"dt {' '.join(argv[:2])}: {exc}"
        finally:
            CALLER.reset(token)
            provenance.done(acting)
        header = marshal.dumps({"code": code, "stderr": err, "stdout": len(out)})
        try:
            conn.sendall(len(header).to_bytes(HEADER, "big") + header + out)
        except OSError:
            pass


class Workers:
    """Threads that run ``answer(*args)``, kept between calls: a thread a call opened a
    database connection a call (~0.8 ms of a ~1 ms round trip). A call is given to an idle
    worker, else to a new one, so a slow or stuck call never holds up another; a worker
    idle for ``IDLE_SECONDS`` ends (and its connection is closed)."""

    IDLE_SECONDS = 60.0

    def __init__(self, answer, name: str = "dt-call"):
        self._answer, self._name = answer, name
        self._calls: collections.deque = collections.deque()  # given to idle workers
        self._idle = 0  # workers waiting for a call and not yet given one
        self._ready = threading.Condition()

    def submit(self, *args) -> None:
        with self._ready:
            if self._idle:  # one of them takes it (claimed and queued under the lock)
                self._idle -= 1
                self._calls.append(args)
                self._ready.notify()
                return
        threading.Thread(target=self._work, args=(args,), name=self._name, daemon=True).start()

    def _work(self, args: tuple) -> None:
        while True:
            try:
                self._answer(*args)
            except Exception:  # noqa: BLE001 - _answer reports its own failures
                pass
            with self._ready:
                self._idle += 1
                if not self._ready.wait_for(lambda: self._calls, self.IDLE_SECONDS):
                    self._idle -= 1  # none given since: this worker ends
                    return
                args = self._calls.popleft()


class Server:
    """The listening socket and its accepting thread; ``close()`` removes the socket."""

    def __init__(self, home: Home):
        self.home = home
        self.path = str(home.root / SOCKET_NAME)
        try:
            os.unlink(self.path)  # left by a daemon killed -9
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(self.path)
        finally:
            os.umask(old)
        self.sock.listen(64)
        self.closed = False
        self.workers = Workers(_answer)
        threading.Thread(target=self._accept, name="dt-socket", daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.workers.submit(conn, self.home)

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        finally:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


def serve(home: Home) -> Server:
    """Start answering ``dt`` calls for ``home`` on its socket."""
    return Server(home)
