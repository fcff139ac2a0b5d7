"""A virtual environment written directly: its folders, ``pyvenv.cfg``, the ``python``
links and an ``activate`` script, as ``python -m venv --without-pip`` writes them, in
this process (no interpreter or uv started for it).

``uv pip install --prefix`` then installs into it with the base interpreter's description
(which uv keeps cached) instead of starting the new environment's interpreter to ask it;
``fix_shebangs`` points the scripts it wrote at the environment's own ``python``.
"""

from __future__ import annotations

import os
from pathlib import Path

SHEBANG_MAX = 127  # longer shebang lines are cut by older kernels: /bin/sh runs those
_ACTIVATE = os.path.join(os.path.dirname(os.__file__), "venv", "scripts", "common", "activate")


def site_packages(root: Path, version: str) -> Path:
    """``lib/pythonX.Y/site-packages`` of an environment for Python ``version`` (X.Y.Z)."""
    return root / "lib" / ("python" + ".".join(version.split(".")[:2])) / "site-packages"


def write_venv(root: Path, interpreter: str, version: str, name: str) -> None:
    """Make ``root`` a virtual environment of ``interpreter`` (Python ``version``), its
    prompt ``(name)``."""
    minor = ".".join(version.split(".")[:2])
    site_packages(root, version).mkdir(parents=True)
    os.symlink("lib", root / "lib64")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    os.symlink(interpreter, bin_dir / "python")
    for alias in ("python3", f"python{minor}"):
        os.symlink("python", bin_dir / alias)
    (root / "pyvenv.cfg").write_text(
        f"home = {os.path.dirname(interpreter)}\n"
        "implementation = CPython\n"
        f"version_info = {version}\n"
        "include-system-site-packages = false\n"
    )
    try:
        with open(_ACTIVATE, encoding="utf-8") as f:
            template = f.read()
    except OSError:
        return  # an interpreter without the venv module's scripts: no activate script
    for placeholder, value in (("__VENV_DIR__", str(root)), ("__VENV_NAME__", name),
                               ("__VENV_PROMPT__", f"({name}) "), ("__VENV_BIN_NAME__", "bin"),
                               ("__VENV_PYTHON__", str(bin_dir / "python"))):
        template = template.replace(placeholder, value)
    (bin_dir / "activate").write_text(template)


def shebang(python: str) -> bytes:
    """The first line(s) of a script run by ``python``: ``#!python``, or when that is too
    long or holds a space, ``/bin/sh`` starting it (as installers write it)."""
    if len(python) + 3 <= SHEBANG_MAX and " " not in python:
        return f"#!{python}\n".encode()
    return f"#!/bin/sh\n'''exec' '{python}' \"$0\" \"$@\"\n' '''\n".encode()


def _header(data: bytes) -> tuple[str, int] | None:
    """(the interpreter, the header's length) of a script's shebang, or None."""
    if not data.startswith(b"#!"):
        return None
    first, _, rest = data.partition(b"\n")
    if first.strip() == b"#!/bin/sh" and rest.startswith(b"'''exec' '"):
        line, _, after = rest.partition(b"\n")
        if not after.startswith(b"' '''\n"):
            return None
        path = line[len(b"'''exec' '"):].split(b"'", 1)[0]
        return path.decode(errors="replace"), len(first) + len(line) + 8
    return first[2:].strip().decode(errors="replace"), len(first) + 1


def fix_shebangs(bin_dir: Path, interpreter: str, python: str) -> int:
    """Point every script in ``bin_dir`` that ``interpreter`` would run at ``python``
    instead; the number of scripts changed."""
    base = os.path.realpath(interpreter)
    changed = 0
    for entry in bin_dir.iterdir():
        if entry.is_symlink() or not entry.is_file():
            continue
        try:
            with open(entry, "rb") as f:
                data = f.read()
        except OSError:
            continue
        header = _header(data[:4096])
        if header is None or os.path.realpath(header[0]) != base:
            continue
        entry.write_bytes(shebang(python) + data[header[1]:])
        changed += 1
    return changed
