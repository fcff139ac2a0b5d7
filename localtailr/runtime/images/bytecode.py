"""Bytecode for a freshly installed environment, compiled in this process.

The same bytes ``py_compile`` (and ``uv pip install --compile-bytecode``) would write, for
the interpreter running this process, made with the import system's own loader (frozen,
already loaded): importing ``py_compile`` costs ~7 ms (traceback, tokenize, textwrap...),
more than compiling a small package.
"""

from __future__ import annotations

import os
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
    data = _external._code_to_timestamp_pyc(code, stats["mtime"], stats["size"])
    target = _external.cache_from_source(path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    _external._write_atomic(target, data, _external._calc_mode(path))
    return True


def compile_tree(folder: str) -> int:
    """Compile every ``.py`` module under ``folder``; the number compiled."""
    count = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if name.endswith(".py") and compile_file(os.path.join(root, name)):
                count += 1
    return count
