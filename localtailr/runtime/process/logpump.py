"""A run's log pump: holds the run's stdout and stderr to their cap, whatever the writer's speed.

The bootstrap calls ``start(run_dir, cap)`` before the job's code runs (it loads this
file by path: standard library only). The process's stdout and stderr become pipes, and a
forked pump process copies them to ``runs/<id>/stdout`` and ``stderr``. A file that
would grow over ``cap`` bytes is renamed to ``*.1`` (replacing the older one, whose lines
are dropped) and the new file starts with a line that says so. The writer can never get
ahead: it blocks on a full pipe until the pump has written (and rotated).

The pump leads its own session, so that stopping or killing the run's process group does
not lose what is still in the pipes; it ends when every writer has closed them (the run
and every process it started have ended). Its pid is in ``runs/<id>/logpump``: the
daemon leaves it out of the run's tree (memory, CPU, signals, leftovers).
"""

from __future__ import annotations

import os
import select

NAMES = ("stdout", "stderr")
PID_FILE = "logpump"
CHUNK = 1 << 16
MIN_CAP = 2 * CHUNK


_prepared: tuple[int, int, list[int]] | None = None  # (pid, its order pipe, write ends)


def prepare() -> tuple[int, int, list[int]]:
    """Fork a pump ahead of its run (a fork server's child waiting for its run does): it
    waits for its order (the run folder and the cap) from ``start``, and ends without one
    when this process drops it (``discard``) or ends first. ``start`` takes it (or
    prepares one itself); returns what it keeps: (pid, order pipe, write ends)."""
    global _prepared
    discard()
    pipes = [os.pipe(), os.pipe()]
    order_r, order_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setsid()
            os.close(order_w)
            for _, w in pipes:
                os.close(w)
            chunks = []
            while chunk := os.read(order_r, CHUNK):
                chunks.append(chunk)
            if chunks:
                run_dir, cap = b"".join(chunks).decode().rsplit("\0", 1)
                pump(run_dir, int(cap), [r for r, _ in pipes])
        except BaseException:  # noqa: BLE001 - nothing to report to: the run's logs are ours
            code = 1
        finally:
            os._exit(code)
    os.close(order_r)
    for r, _ in pipes:
        os.close(r)
    _prepared = (pid, order_w, [w for _, w in pipes])
    return _prepared


def discard() -> None:
    """Drop the pump prepared ahead, if any: it ends."""
    global _prepared
    if _prepared is not None:
        _, order, writers = _prepared
        _prepared = None
        for fd in (order, *writers):
            os.close(fd)


def start(run_dir: str, cap: int) -> int:
    """Start the pump of ``run_dir`` (the one prepared ahead, or a new one) and point this
    process's fd 1 and 2 at it; its pid."""
    global _prepared
    cap = max(int(cap), MIN_CAP)
    pid, order, writers = _prepared if _prepared is not None else prepare()
    _prepared = None
    os.write(order, f"{run_dir}\0{cap}".encode())  # far below a pipe's buffer
    os.close(order)
    for w, target in zip(writers, (1, 2), strict=True):
        os.dup2(w, target)
        os.close(w)
    with open(os.path.join(run_dir, PID_FILE), "w") as f:
        f.write(str(pid))
    return pid


class Log:
    """One capped log file, appended to; rotated to ``<name>.1`` before it passes the cap."""

    def __init__(self, path: str, cap: int):
        self.path = path
        self.cap = cap
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.size = os.fstat(self.fd).st_size
        self.rotations = 0
        self.dropped = 0

    def write(self, data: bytes) -> None:
        """Append ``data`` (rotating first if it would pass the cap). On a write error (a
        full disk) the data is dropped, not the run: the writer must never block or break."""
        try:
            if self.size and self.size + len(data) > self.cap:
                self.rotate()
            view = memoryview(data)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
                self.size += n
        except OSError:
            self.dropped += len(data)

    def rotate(self) -> None:
        name = os.path.basename(self.path)
        older = os.path.exists(self.path + ".1")
        os.close(self.fd)
        os.replace(self.path, self.path + ".1")
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o600)
        self.size = 0
        self.rotations += 1
        dropped = " older output was dropped;" if older else ""
        self.write(f"localtailr: {name} reached its cap of {self.cap} bytes and was rotated:"
                   f"{dropped} the previous {name} is {name}.1\n".encode())

    def close(self) -> None:
        os.close(self.fd)


def pump(run_dir: str, cap: int, fds: list[int]) -> None:
    """Copy each of ``fds`` (stdout's and stderr's read ends) to its log until end of file."""
    logs = {fd: Log(os.path.join(run_dir, name), cap) for fd, name in zip(fds, NAMES, strict=True)}
    open_fds = set(fds)
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [])
        for fd in ready:
            try:
                data = os.read(fd, CHUNK)
            except InterruptedError:
                continue
            if data:
                logs[fd].write(data)
            else:
                open_fds.discard(fd)
                os.close(fd)
    for log in logs.values():
        log.close()
