"""Importing user code: the one loader both a job's process (``runtime/process/bootstrap.py``)
and a workflow task (``core/task_call.py``) use, so a module is named the same in both.

A module named ``__main__`` is a script run as ``__main__``: it is loaded from its file under
``main_alias(file)`` (``__localtailr_main_<digest>``), so its ``if __name__ == "__main__":``
block does not run, and loading it again answers the same module. When the script *is* this
process's ``__main__``, that module is answered.

Standard library only: the bootstrap loads this file by path, before the ``localtailr`` package
(which the job's image may not have).
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib import util
from types import ModuleType

MAIN = "__main__"


def main_alias(source_file: str) -> str:
    """The module name a ``__main__`` script at ``source_file`` is loaded under."""
    import hashlib  # ~2.5 ms at job start: only for a __main__ script

    digest = hashlib.sha1(os.path.realpath(source_file).encode()).hexdigest()[:12]
    return f"__localtailr_main_{digest}"


def import_module(module_name: str, source_file: str | None = None) -> ModuleType:
    """The module ``module_name``; for ``"__main__"``, the script at ``source_file`` (its
    folder put first on ``sys.path``). Raises ImportError when it cannot be loaded; a script
    that fails while loading leaves no half-made module behind."""
    if module_name != MAIN:
        return importlib.import_module(module_name)
    if not source_file:
        raise ImportError("the function was defined in __main__ and its file is unknown")
    main = sys.modules.get(MAIN)
    main_file = getattr(main, "__file__", None)
    if main is not None and main_file and (
        os.path.realpath(main_file) == os.path.realpath(source_file)
    ):
        return main
    alias = main_alias(source_file)
    if alias in sys.modules:
        return sys.modules[alias]
    spec = util.spec_from_file_location(alias, source_file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {source_file}")
    module = util.module_from_spec(spec)
    sys.modules[alias] = module
    folder = os.path.dirname(os.path.abspath(source_file))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[alias]
        raise
    return module
