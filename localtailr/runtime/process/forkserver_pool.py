"""The daemon's fork servers: one pre-started interpreter an image, forking a child a run.

A task or batch run starts in a few milliseconds by ``fork`` from its image's server
(``runtime/forkserver.py``) instead of a new interpreter. ``ForkServers(home)`` keeps one
server an image interpreter and kind ("task": with what a workflow task imports loaded;
"batch": the bootstrap alone, so that a batch job's process holds no more than a spawned
one), started lazily (the run that starts one is spawned the usual way while it loads);
``get(python, env, kind)`` is the ready server or None, and the caller then spawns. A server that died or stopped answering is dropped; no new one is started for
that image for ``COOLDOWN`` seconds (runs are spawned meanwhile).

The daemon waits on every server's socket: ``pump(ready)`` reads what they said, and a
ready ``ForkServer`` keeps the exit codes of its children (``exits``) until the daemon's
``Supervised.poll`` takes them. The servers end when the daemon closes its ends
(``close_all``) or dies.
"""

from __future__ import annotations

import array
import json
import os
import select
import socket
import subprocess
import time
from pathlib import Path

from .forkserver import SERVER_MARK

SERVER = str(Path(__file__).with_name("forkserver.py"))
COOLDOWN = 30.0  # seconds without a new server for an image whose server died
ANSWER_TIMEOUT = 10.0  # seconds to wait for a server to say which pid it forked
FDS_AT_ONCE = 8  # descriptors one read takes (a server sends one a spare, one spare at a time)


class ForkError(Exception):
    """The server forked a child that could not set itself up; the message says why."""


class Unavailable(Exception):
    """The server is gone or did not answer: spawn the run instead."""


class ForkServer:
    """One running fork server, seen from the daemon."""

    def __init__(self, python: str, env: dict[str, str], log: Path | None = None,
                 kind: str = "batch"):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out = open(log, "ab") if log is not None else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                [python, SERVER, str(theirs.fileno()), kind], pass_fds=(theirs.fileno(),),
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True, close_fds=True)
        finally:
            theirs.close()
            if not isinstance(out, int):  # a log file, not DEVNULL
                out.close()
        self.python = python
        self.kind = kind
        self.sock = ours
        self.buf = b""
        self.ready = False
        self.dead = False
        self.exits: dict[int, int] = {}
        self.answers: dict[int, dict] = {}
        self.last_id = 0
        self.received: list[int] = []  # descriptors the server sent, not yet matched
        self.spare: tuple[int, int, float] | None = None  # (pid, its request pipe, forked at)
        self.unused: set[int] = set()  # spares that died unused, their exit not yet heard

    @property
    def pid(self) -> int:
        return self.proc.pid

    def fileno(self) -> int:
        return self.sock.fileno()

    def pump(self) -> None:
        """Read whatever the server has said, without waiting."""
        if self.dead:
            return
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(
                    1 << 16, socket.CMSG_SPACE(FDS_AT_ONCE * 4),
                    socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data, ancillary = b"", []
            for level, kind, fds in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    self.received += array.array("i", fds[:len(fds) - len(fds) % 4]).tolist()
            if not data:
                self._died()
                break
            self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            try:
                message = json.loads(line)
            except ValueError:
                continue
            self._heard(message)

    def _heard(self, message: dict) -> None:
        """Take in one message of the server's."""
        if "exit" in message:
            pid = int(message["exit"])
            if self.spare is not None and self.spare[0] == pid:
                self._drop_spare()  # died before it was given a run
            elif pid in self.unused:
                self.unused.discard(pid)  # found dead when given a run, which was forked anew
            else:
                self.exits[pid] = int(message["code"])
        elif "spare" in message:
            self._drop_spare()
            if self.received:
                self.spare = (int(message["spare"]), self.received.pop(0),
                              float(message["since"]))
        elif "ready" in message:
            self.ready = True
        elif "id" in message:
            self.answers[int(message["id"])] = message

    def _drop_spare(self) -> None:
        if self.spare is not None:
            os.close(self.spare[1])  # it reads end of file and ends
            self.spare = None

    def _died(self) -> None:
        self.dead = True
        self.ready = False
        self._drop_spare()
        self.sock.close()
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def fork(self, run_dir: Path, env: dict[str, str], cwd: Path, stdout: Path,
             stderr: Path) -> tuple[int, float | None]:
        """Fork a child for a run (or give it the spare child forked ahead); its pid, and
        when (monotonic time) a spare was forked (None: forked for it). It starts its
        own session a moment later.

        Raises Unavailable (spawn instead) or ForkError (the run cannot start)."""
        if self.dead or not self.ready:
            raise Unavailable("the fork server is not ready")
        self.pump()  # a spare it announced meanwhile
        given = self._give_spare(run_dir, env, cwd, stdout, stderr)
        if given is not None:
            return given
        if self.dead:
            raise Unavailable("the fork server is gone")
        self.last_id += 1
        ident = self.last_id
        request = {"id": ident, "run_dir": str(run_dir), "cwd": str(cwd), "env": env,
                   "stdout": str(stdout), "stderr": str(stderr)}
        try:
            self.sock.setblocking(True)
            self.sock.settimeout(ANSWER_TIMEOUT)
            self.sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as exc:
            self.kill()
            raise Unavailable(f"the fork server is gone: {exc}") from None
        finally:
            if not self.dead:
                self.sock.setblocking(False)
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while ident not in self.answers:
            left = deadline - time.monotonic()
            if self.dead or left <= 0:
                self.kill()
                raise Unavailable("the fork server did not answer")
            select.select([self.sock], [], [], left)
            self.pump()
        answer = self.answers.pop(ident)
        if "error" in answer:
            raise ForkError(answer["error"])
        since = answer.get("since")
        return int(answer["pid"]), None if since is None else float(since)

    def _give_spare(self, run_dir: Path, env: dict[str, str], cwd: Path, stdout: Path,
                    stderr: Path) -> tuple[int, float] | None:
        """Write the run's request to the spare child's pipe (no round trip through the
        server) and tell the server it was taken; its (pid, forked at), or None when there
        is no spare or it is gone."""
        if self.spare is None:
            return None
        pid, pipe, since = self.spare
        self.spare = None
        request = {"run_dir": str(run_dir), "cwd": str(cwd), "env": env,
                   "stdout": str(stdout), "stderr": str(stderr)}
        try:
            data = memoryview(json.dumps(request).encode())
            while data:
                data = data[os.write(pipe, data):]
        except OSError:
            self.unused.add(pid)  # its exit, still on its way, is no run's
            return None  # it died: the server forks this run
        finally:
            os.close(pipe)
        try:
            self.sock.sendall(json.dumps({"took": pid}).encode() + b"\n")
        except OSError:
            pass  # the server is gone: the spare runs on, watched by its pidfd
        return pid, since

    def kill(self) -> None:
        if not self.dead:
            try:
                self.proc.kill()
            except OSError:
                pass
            self._died()

    def close(self) -> None:
        """Close the daemon's end: the server exits (its children run on)."""
        self._drop_spare()
        if not self.dead:
            self.sock.close()
            self.dead = True
        try:
            self.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def server_environ(home_root: str, image_env: dict[str, str]) -> dict[str, str]:
    """A server's environment: the image's, unbuffered output, and the markers a sweep of
    the home looks for (its forked children show this environment in ``/proc``)."""
    env = dict(image_env)
    env["PYTHONUNBUFFERED"] = "1"
    env["LOCALTAILR_HOME"] = home_root
    env["LOCALTAILR_RUN_ID"] = SERVER_MARK  # each child writes its run's id over it
    return env


class ForkServers:
    """The daemon's fork servers, one an image interpreter and kind."""

    def __init__(self, home_root: str, log: Path | None = None, enabled: bool = True):
        self.home_root = home_root
        self.log = log
        self.enabled = enabled
        self.servers: dict[tuple[str, str], ForkServer] = {}
        self.not_before: dict[tuple[str, str], float] = {}

    def get(self, python: str, image_env, kind: str = "batch") -> ForkServer | None:
        """The ready server of the image interpreter ``python`` and ``kind``; None (and one
        is started, at most every COOLDOWN seconds) when there is none yet. ``image_env``
        is called for a new server's base environment."""
        if not self.enabled:
            return None
        key = (python, kind)
        server = self.servers.get(key)
        if server is not None and server.dead:
            del self.servers[key]
            self.not_before[key] = time.monotonic() + COOLDOWN
            server = None
        if server is None:
            if time.monotonic() < self.not_before.get(key, 0.0):
                return None
            try:
                server = ForkServer(python, server_environ(self.home_root, image_env()),
                                    self.log, kind)
            except OSError:
                self.not_before[key] = time.monotonic() + COOLDOWN
                return None
            self.servers[key] = server
            return None
        if not server.ready:
            server.pump()
        return server if server.ready else None

    def fds(self) -> list[int]:
        return [s.fileno() for s in self.servers.values() if not s.dead]

    def pump(self, ready: set[int] | None = None) -> None:
        """Read what the servers whose socket is in ``ready`` (default: all) said."""
        for server in list(self.servers.values()):
            if not server.dead and (ready is None or server.fileno() in ready):
                server.pump()

    def pids(self) -> list[int]:
        return [s.pid for s in self.servers.values() if not s.dead]

    def close_all(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()
