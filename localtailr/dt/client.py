"""``dt`` as the SDK starts it: hand the call to the home's daemon when one serves ``dt``
(``<home>/dt.sock``, see ``server``), else run it in this process (``main``).

The daemon has localtailr imported and its database open, so a call costs this process's
start, a socket round trip and the operation. Only the standard library is imported here
before the daemon answers. What the call depends on travels with it: the caller
(``LOCALTAILR_USER``), the environment (``DATATAILR_JOB_ENVIRONMENT``), local paths made
absolute, and stdin for ``blob put``.
"""

import os  # (no __future__ import: it would cost every call a module)
import sys

SOCKET_NAME = "dt.sock"
HEADER = 4  # bytes of a frame's length (big-endian)


def _home() -> str:
    return os.path.abspath(os.path.expanduser(os.environ.get("LOCALTAILR_HOME")
                                              or "~/.localtailr"))


def _absolute(argv: list[str]) -> list[str]:
    out = list(argv)
    if argv[:2] == ["blob", "cp"]:
        out = out[:2] + [a if a.startswith(("blob://", "-")) else os.path.abspath(a)
                         for a in out[2:]]
    return [("file://" + os.path.abspath(a[7:]) if a.startswith("file://") else a) for a in out]


def _recv(sock, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("the daemon closed the dt socket")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def through_daemon(argv: list[str]) -> int | None:
    """The exit code of ``argv`` run by the home's daemon; None when no daemon serves dt."""
    path = os.path.join(_home(), SOCKET_NAME)
    if not argv or os.environ.get("LOCALTAILR_SECRET_KEY") or not os.path.exists(path):
        return None
    # marshal (built in) and _socket, not json and socket: they would import re, enum and
    # selectors, a third of this process's cost (the socket is the home owner's alone)
    import _socket
    import marshal

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            sock.connect(path)
        except OSError:
            return None
        stdin = sys.stdin.buffer.read() if argv[:2] == ["blob", "put"] else b""
        request = marshal.dumps({
            "argv": _absolute(argv), "user": os.environ.get("LOCALTAILR_USER") or None,
            "environment": os.environ.get("DATATAILR_JOB_ENVIRONMENT") or None,
            "run_id": os.environ.get("LOCALTAILR_RUN_ID") or None,  # lineage of a job's calls
            "stdin": len(stdin) if argv[:2] == ["blob", "put"] else None,
        })
        try:
            sock.sendall(len(request).to_bytes(HEADER, "big") + request + stdin)
            header = marshal.loads(_recv(sock, int.from_bytes(_recv(sock, HEADER), "big")))
            out = _recv(sock, header["stdout"])
        except (OSError, ValueError, EOFError, TypeError, KeyError) as exc:
            # sent: it may have run, so no retry
            sys.stderr.write(f"dt: the daemon did not answer ({exc}); see its log\n")
            return 1
    finally:
        sock.close()
    if out:
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
    if header.get("stderr"):
        sys.stderr.write(header["stderr"] + "\n")
    return int(header["code"])


def quick_get(argv: list[str]) -> bool:
    """``dt kv get KEY [--json]`` answered in this process without the dt face's imports
    (``platform.kv_quick``); False to go the full way (anything else, or any doubt)."""
    if len(argv) < 3 or argv[:2] != ["kv", "get"] or any(a != "--json" for a in argv[3:]):
        return False
    key = argv[2]
    if key.startswith(("-", '"')):
        return False  # an option, or a key the SDK quoted (args.unquote): the full way
    from ..platform import kv_quick  # the get alone: the whole dt face costs ~25 ms of imports

    value = kv_quick.get(key)
    if value is None:
        return False
    out = sys.stdout.buffer  # as main.render prints a text value
    out.write((value if value.endswith("\n") or not value else value + "\n").encode())
    out.flush()
    return True


def main() -> int:
    argv = sys.argv[1:]
    code = through_daemon(argv)
    if code is not None:
        return code
    if quick_get(argv):
        return 0
    from .main import run  # the whole dt face: only when no daemon answered

    return run(argv)
