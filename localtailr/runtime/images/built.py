"""A ready environment (``BuiltImage``) and finding one without building: by key from its
marker file, or by an alias (a hash of the raw text that defined it, for ``localtailr run``).

Light on purpose (no dataclasses, subprocess or store import): a cached ``localtailr run``
finds its environment with this module alone; ``cache`` is imported only to build.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from ...core.home import Home

MARKER = "localtailr-image.json"
LOG_NAME = "build.log"
TOUCH_EVERY = 60.0

_FIELDS = ("key", "path", "python", "env", "log_path", "python_version", "warnings")


class BuiltImage:
    """A ready environment. (A plain class, not a dataclass: a cached ``localtailr run``
    would pay for importing dataclasses.)"""

    __slots__ = _FIELDS
    key: str
    path: Path
    python: str
    env: dict[str, str]
    log_path: Path
    python_version: str
    warnings: tuple[str, ...]

    def __init__(self, key: str, path: Path, python: str, env: dict[str, str], log_path: Path,
                 python_version: str = "", warnings: tuple[str, ...] = ()):
        for name, value in zip(_FIELDS, (key, path, python, env, log_path, python_version,
                                         warnings)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: BuiltImage is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: BuiltImage is immutable")

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other: object) -> bool:
        return self._values() == other._values() if type(other) is BuiltImage else NotImplemented

    def __hash__(self) -> int:
        return hash((self.key, self.path, self.python))

    def __repr__(self) -> str:
        return "BuiltImage(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in _FIELDS) + ")"

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with the venv activated and the
        ENV lines applied (``$VAR`` in their values expanded against ``base``)."""
        env = dict(os.environ if base is None else base)
        env.pop("PYTHONHOME", None)
        env["VIRTUAL_ENV"] = str(self.path)
        env["PATH"] = str(self.bin) + os.pathsep + env.get("PATH", "")
        if self.env:
            from ...core.buildscript import expand  # only for images with ENV lines

            for name, value in self.env.items():
                env[name] = expand(value, env)
        return env


def marker_path(home: Home, key: str) -> Path:
    return home.venvs / key / MARKER


def touch(home: Home, key: str, marker: Path, mtime: float) -> None:
    """Record a use of the image (marker mtime and ``images.last_used``), at most once a
    ``TOUCH_EVERY`` seconds."""
    now = time.time()
    if now - mtime < TOUCH_EVERY:
        return
    try:
        os.utime(marker, (now, now))
    except OSError:
        return
    import sqlite3  # once a minute at most: not worth every run's import

    try:
        if "localtailr.store" in sys.modules:
            from ... import store  # only if loaded already: a cached run does not import the store

            store.write(store.connection(home),
                        "UPDATE images SET last_used = ? WHERE key = ?", (now, key))
        elif home.db_path.exists():
            conn = sqlite3.connect(home.db_path, timeout=5, isolation_level=None)
            try:
                conn.execute("UPDATE images SET last_used = ? WHERE key = ?", (now, key))
            finally:
                conn.close()
    except sqlite3.Error:
        pass  # last_used is advisory; the marker's mtime holds it too


def built_from_marker(home: Home, key: str) -> BuiltImage | None:
    """The ready image with this key as its marker describes it, or None."""
    path = home.venvs / key
    try:
        data = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return BuiltImage(
        key=key,
        path=path,
        python=str(path / "bin" / "python"),
        env=dict(data.get("env", {})),
        log_path=path / LOG_NAME,
        python_version=data.get("python", ""),
        warnings=tuple(data.get("warnings", [])),
    )


def alias_lookup(home: Home, alias: str) -> BuiltImage | None:
    """The ready image last recorded under ``alias`` (a hash of raw inputs), or None."""
    try:
        key = (home.venvs / ".alias" / alias).read_text().strip()
    except OSError:
        return None
    marker = marker_path(home, key)
    try:
        st = os.stat(marker)
    except OSError:
        return None
    built = built_from_marker(home, key)
    if built is not None:
        touch(home, key, marker, st.st_mtime)
    return built


def alias_remember(home: Home, alias: str, key: str) -> None:
    folder = home.venvs / ".alias"
    folder.mkdir(exist_ok=True)
    tmp = folder / f".{alias}.{os.getpid()}"
    tmp.write_text(key)
    os.replace(tmp, folder / alias)
