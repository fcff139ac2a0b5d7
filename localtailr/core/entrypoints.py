"""Where a job's code is: the entrypoint of a definition, and the app framework it uses.

An entrypoint is stored as a dict another process can load without this one::

    {"module": "pkg.mod", "qualname": "main", "sys_path": "/abs/dir", "file": "/abs/pkg/mod.py",
     "kind": "module"}

``sys_path`` is the folder from which the top-level package (or the plain module) is
importable; it is None for code installed in site-packages (the image provides it).
A function defined in a script run as ``__main__`` has ``kind`` "script": the runtime
loads ``file`` under another module name (so its ``if __name__ == "__main__"`` block
does not run) and takes ``qualname`` from it. A module given as the entrypoint (a
streamlit app, as the published SDK allows) has ``qualname`` None.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import sys
import types
from collections.abc import Mapping
from pathlib import Path

KINDS = ("module", "script")
FRAMEWORKS = ("streamlit", "dash", "flask", "fastapi", "panel")

_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def entrypoint_of(obj: object) -> dict:
    """The entrypoint dict of a function, a ``@task``, a module, or a ``"module:qualname"`` string.

    Raises ValueError for a lambda, a nested function, a builtin, or a name that cannot
    be found again by importing its module.
    """
    if isinstance(obj, types.ModuleType):
        return _of_module(obj)
    if isinstance(obj, str):
        return _of_reference(obj)
    func = getattr(obj, "func", obj)  # a @task is its function
    func = inspect.unwrap(func) if callable(func) else func
    if not (inspect.isfunction(func) or inspect.isclass(func)):
        raise ValueError(
            f"invalid entrypoint {obj!r}: use a function defined at the top level of a module"
            " or script, a module, or a 'module:function' string"
        )
    qualname, module_name = func.__qualname__, func.__module__
    if func.__name__ == "<lambda>":
        raise ValueError(
            f"invalid entrypoint {qualname!r}: a lambda cannot be loaded by another process;"
            " use a function defined with def at the top level of a module"
        )
    if "<locals>" in qualname:
        raise ValueError(
            f"invalid entrypoint {qualname!r}: a function nested in another cannot be loaded by"
            " another process; define it at the top level of a module"
        )
    if module_name == "__main__":
        file = _source_file(func)
        if file is None:
            raise ValueError(
                f"invalid entrypoint {qualname!r}: it was defined in __main__ with no source file"
                " (an interactive session); put it in a module or a script file"
            )
        return {"module": "__main__", "qualname": qualname, "sys_path": str(Path(file).parent),
                "file": file, "kind": "script"}
    module = sys.modules.get(module_name)
    module_file = getattr(module, "__file__", None)
    if module is None or module_file is None:
        raise ValueError(
            f"invalid entrypoint {module_name}.{qualname}: its module has no file to import from"
        )
    found: object = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
    target = getattr(found, "func", found)
    if target is not func and not (callable(target) and inspect.unwrap(target) is func):
        raise ValueError(
            f"invalid entrypoint {qualname!r}: {module_name}.{qualname} does not name this function"
            " (define it at the top level of the module under its own name)"
        )
    return {"module": module_name, "qualname": qualname, **_location(module_name, module_file),
            "kind": "module"}


def _of_module(module: types.ModuleType) -> dict:
    file = getattr(module, "__file__", None)
    if file is None:
        raise ValueError(f"invalid entrypoint {module!r}: the module has no file")
    if module.__name__ == "__main__":
        return {"module": "__main__", "qualname": None, "sys_path": str(Path(file).resolve().parent),
                "file": str(Path(file).resolve()), "kind": "script"}
    return {"module": module.__name__, "qualname": None, **_location(module.__name__, file),
            "kind": "module"}


def _of_reference(text: str) -> dict:
    if not _REFERENCE.fullmatch(text):
        raise ValueError(f"invalid entrypoint {text!r}: use 'package.module:function'")
    module_name, _, qualname = text.partition(":")
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        raise ValueError(f"invalid entrypoint {text!r}: module {module_name!r} cannot be found")
    return {"module": module_name, "qualname": qualname, **_location(module_name, spec.origin),
            "kind": "module"}


def _source_file(func: object) -> str | None:
    try:
        file = inspect.getsourcefile(func)  # type: ignore[arg-type]
    except TypeError:
        return None
    return str(Path(file).resolve()) if file and os.path.isfile(file) else None


def _location(module_name: str, file: str) -> dict:
    path = Path(file).resolve()
    levels = len(module_name.split(".")) - (0 if path.name == "__init__.py" else 1)
    root = path.parent
    for _ in range(levels):
        root = root.parent
    installed = root.name in ("site-packages", "dist-packages")
    return {"sys_path": None if installed else str(root), "file": str(path)}


def check(entrypoint: object, required: bool = True) -> dict | None:
    """Validate a stored entrypoint dict; return it with exactly the contract's keys."""
    if entrypoint is None and not required:
        return None
    if not isinstance(entrypoint, Mapping):
        raise ValueError(f"invalid entrypoint {entrypoint!r}: expected a dict with module,"
                         " qualname, sys_path, file and kind")
    kind = entrypoint.get("kind", "module")
    if kind not in KINDS:
        raise ValueError(f"invalid entrypoint kind {kind!r}: expected one of {', '.join(KINDS)}")
    module = entrypoint.get("module")
    if not isinstance(module, str) or not module:
        raise ValueError(f"invalid entrypoint module {module!r}: expected a module name")
    out: dict[str, str | None] = {"module": module}
    for key in ("qualname", "sys_path", "file"):
        value = entrypoint.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"invalid entrypoint {key} {value!r}: expected a string or None")
        out[key] = value
    if kind == "script" and not out["file"]:
        raise ValueError("invalid entrypoint: a script entrypoint needs its file")
    out["kind"] = kind
    return out


def framework(name: object) -> str | None:
    """A known framework name (case-insensitive), or None."""
    if name is None or name == "":
        return None
    if not isinstance(name, str) or name.strip().lower() not in FRAMEWORKS:
        raise ValueError(f"unknown framework {name!r}: expected one of {', '.join(FRAMEWORKS)}")
    return name.strip().lower()


_IMPORT = re.compile(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", re.MULTILINE)


def infer_framework(entrypoint: Mapping) -> str | None:
    """The framework an app's source imports (streamlit, dash, panel, fastapi, flask, in that
    order of precedence), or None when it imports none of them."""
    file = entrypoint.get("file")
    if not file or not os.path.isfile(file):
        return None
    try:
        source = Path(file).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    imported = set(_IMPORT.findall(source))
    for name in ("streamlit", "dash", "panel", "fastapi", "flask"):
        if name in imported:
            return name
    return None
