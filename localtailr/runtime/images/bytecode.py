"""Bytecode for a freshly installed environment, compiled in this process.

The same bytes ``py_compile`` (and ``uv pip install --compile-bytecode``) would write, for
the interpreter running this process, made with the import system's own loader (frozen,
already loaded): importing ``py_compile`` costs ~7 ms (traceback, tokenize, textwrap...),
more than compiling a small package.
"""

from __future__ import annotations

import os
import sys
from importlib import _bootstrap_external as _external  # frozen: py_compile's own helpers
from importlib.machinery import SourceFileLoader


def compile_file(path: str) -> bool:
    """Write ``__pycache__/<name>.<tag>.pyc`` for the module at ``path`` (timestamp-based, as
    ``py_compile.compile(path)``); False when it does not compile (left to fail on import)."""
    loader = SourceFileLoader("<compile>", path)
    try:
        source = loader.get_data(path)
        code = loader.source_to_code(source, path)
    except (SyntaxError, ValueError, OSError):
        return False  # Python 2 leftovers in a wheel, say: skipped, as installers do
    stats = loader.path_stats(path)
    data = _external._code_to_timestamp_pyc(  # type: ignore[attr-defined]
        code, stats["mtime"], stats["size"])
    target = _external.cache_from_source(path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    mode = _external._calc_mode(path)  # type: ignore[attr-defined]
    _external._write_atomic(target, data, mode)  # type: ignore[attr-defined]
    return True


def compile_tree(folder: str) -> int:
    """Compile every ``.py`` module under ``folder``; the number compiled."""
    count = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if name.endswith(".py") and compile_file(os.path.join(root, name)):
                count += 1
    return count


class DetachedCompiler:
    """A detached process (a grandchild: no zombie is left to whatever this process
    becomes, and it holds none of this process's files open) that waits for one folder to
    compile: started while uv installs, so that once the environment is in place only its
    path is written to a pipe.

    For a caller about to ``exec`` a script in the environment: the bytecode is written
    while the script's interpreter starts, on another core. A module the script imports
    before its bytecode is written is compiled by the import itself, as it would be without.
    """

    def __init__(self, fd: int):
        self._fd: int | None = fd

    @classmethod
    def start(cls) -> DetachedCompiler | None:
        """The compiler, waiting; None when it cannot be started (then nothing was)."""
        threading = sys.modules.get("threading")
        if threading is not None and threading.active_count() > 1:
            return None  # forking a threaded process: a lock another thread holds stays held
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            return None
        if pid == 0:  # the intermediate child: start the compiler and leave at once
            code = 1
            try:
                if os.fork() == 0:
                    _serve(read)
                code = 0
            finally:
                os._exit(code)
        os.close(read)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            os.close(write)
            return None
        return cls(write)

    def compile(self, folder: str) -> None:
        """Have ``folder`` compiled (this returns at once)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.write(fd, os.fsencode(folder))
            finally:
                os.close(fd)

    def cancel(self) -> None:
        """Let the compiler end with nothing compiled."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _serve(read: int) -> None:
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)  # not the caller's pipes: a reader of its output sees EOF
        os.closerange(3, read)  # nor its lock, log or database files, nor the pipe's
        os.closerange(read + 1, 1 << 16)  # write end (else no end of file comes)
        chunks = []
        while chunk := os.read(read, 65536):
            chunks.append(chunk)
        if chunks:
            compile_tree(os.fsdecode(b"".join(chunks)))
    finally:
        os._exit(0)
