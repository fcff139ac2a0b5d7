"""Finding a Python interpreter for an image's ``python_version``.

Accepted requests: ``"auto"`` (the current interpreter), ``"3.12"`` or ``"3.12.1"`` (a
matching interpreter on this machine: the current one, ``python3.12`` on ``PATH``, or a
pyenv version under ``$PYENV_ROOT/versions``), or a specifier such as ``">=3.11"``. pyenv's
shims are never used: the real interpreter behind them is. When nothing matches, the
current interpreter is used with a warning; ``LOCALTAILR_STRICT_PYTHON=1`` makes that an
error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ...core import settings
from ...core.image_key import current_interpreter_path
from ...core.python_request import ACCEPTED, Interpreter
from ...core.python_request import VERSION_RE as _VERSION_RE
from ...core.python_request import parse_request as _parse_request

STRICT_ENV = settings.STRICT_PYTHON.name

_versions: dict[tuple[str, int, int], str] = {}
_found: dict[str, Interpreter] = {}


class InterpreterNotFoundError(ValueError):
    """No interpreter on this machine matches the requested Python version."""


def current() -> Interpreter:
    """The interpreter running this process (the base one when this is a venv)."""
    path = current_interpreter_path()
    version = ".".join(str(p) for p in sys.version_info[:3])
    return Interpreter(path, version)


def _is_script(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return True


def version_of(path: str) -> str | None:
    """The ``X.Y.Z`` version of the interpreter at ``path`` (asked once per file state)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    stamp = (path, st.st_mtime_ns, st.st_size)
    if stamp not in _versions:
        import subprocess  # only to ask another interpreter: not for "auto" (a cold run)

        try:
            out = subprocess.run(
                [path, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                capture_output=True, text=True, timeout=30, check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
        if not _VERSION_RE.fullmatch(out):
            return None
        _versions[stamp] = out
    return _versions[stamp]


def _pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def candidates(minor: str | None = None) -> list[tuple[str, str]]:
    """Real interpreters on this machine as (path, version), best known first.

    ``minor`` ("3.12") narrows the search to that minor version.
    """
    found: dict[str, str] = {}
    cur = current()
    found[cur.path] = cur.version
    names = [f"python{minor}"] if minor else ["python3"] + [f"python3.{n}" for n in range(20, 5, -1)]
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or "shims" in Path(folder).parts:
            continue
        for name in names:
            path = os.path.join(folder, name)
            if not os.access(path, os.X_OK) or os.path.isdir(path):
                continue
            real = os.path.realpath(path)
            if real in found or "shims" in Path(real).parts or _is_script(real):
                continue
            version = version_of(real)
            if version:
                found[real] = version
    versions_dir = _pyenv_root() / "versions"
    if versions_dir.is_dir():
        for entry in sorted(versions_dir.iterdir(), reverse=True):
            if not _VERSION_RE.fullmatch(entry.name) or entry.name.count(".") != 2:
                continue
            major_minor = ".".join(entry.name.split(".")[:2])
            if minor and major_minor != minor:
                continue
            binary = entry / "bin" / f"python{major_minor}"
            if binary.is_file():
                found.setdefault(os.path.realpath(binary), entry.name)
    return list(found.items())


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def find_interpreter(request: str | None = "auto") -> Interpreter:
    """The interpreter to build an image with.

    Raises:
        ValueError: if ``request`` is not an accepted form.
        InterpreterNotFoundError: if none matches and ``LOCALTAILR_STRICT_PYTHON=1``.
    """
    request = (request or "auto").strip() if isinstance(request, str) else request
    if not isinstance(request, str):
        raise TypeError(f"python_version {request!r} must be a string; accepted: {ACCEPTED}")
    if request in ("auto", ""):
        return current()
    strict = settings.STRICT_PYTHON.text() not in ("", "0")
    memo = _found.get(request)
    if memo is not None and (memo.warning is None or not strict):
        return memo
    exact, spec = _parse_request(request)
    cur = current()

    def matches(version: str) -> bool:
        if exact is not None:
            return version == exact or version.startswith(exact + ".")
        return spec.contains(version, prereleases=True)

    if matches(cur.version):
        result = Interpreter(cur.path, cur.version, request)
    else:
        minor = ".".join(exact.split(".")[:2]) if exact else None
        best = sorted(
            ((p, v) for p, v in candidates(minor) if matches(v)),
            key=lambda pv: _key(pv[1]), reverse=True,
        )
        if best:
            result = Interpreter(best[0][0], best[0][1], request)
        else:
            message = (
                f"no Python {request} found on this machine (looked at the current interpreter, "
                f"PATH and {_pyenv_root() / 'versions'}); using {cur.version} at {cur.path}"
            )
            if strict:
                raise InterpreterNotFoundError(
                    f"no Python {request} found on this machine (looked at the current "
                    f"interpreter, PATH and {_pyenv_root() / 'versions'}); "
                    f"{STRICT_ENV}=1 forbids falling back to {cur.version}"
                )
            result = Interpreter(cur.path, cur.version, request, warning=message)
    _found[request] = result
    return result
