"""The home folder by its path as text: where it is, making it and keeping it private.

``core.home.Home`` is built on these; a one-shot command that must start fast (``kv get``
on the command line) uses them directly, without pathlib (pathlib imports re, enum,
fnmatch and urllib: ~7 ms, half a bare interpreter's start).
"""

import os
import stat

from . import settings

ENV_VAR = settings.HOME.name
DB_NAME = "state.db"
SUBFOLDERS = ("blobs", "venvs", "runs")
OPEN_BITS = 0o077  # group and other permission bits

_tightened: set[str] = set()  # homes this process has checked (see tighten)


def default_root() -> str:
    """The home folder to use: ``LOCALTAILR_HOME`` read at call time, else ``~/.localtailr``
    (as ``core.home.default_path``, as text)."""
    value = os.environ.get(ENV_VAR)
    if value:
        return absolute(value)
    return os.path.expanduser("~/.localtailr")


def absolute(path: str) -> str:
    """``path`` with ``~`` expanded, made absolute against the working folder (not
    normalised: ``..`` is left to the file system, as ``Path.absolute`` does)."""
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(os.getcwd(), path)


def _tighten_path(path: str, mode: int) -> None:
    if mode & OPEN_BITS:
        try:
            os.chmod(path, mode & 0o7700)
        except OSError:  # not ours to change (or gone): the folder above is 0700 anyway
            pass


def _tighten_entry(path: str) -> None:
    """Tighten one entry found in a listing, unless it is a link or has gone since (another
    process's temporary file, replaced while the home is being opened)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISLNK(st.st_mode):
        _tighten_path(path, st.st_mode)


def tighten(root: str) -> None:
    """Take group and other permissions away: from the home and what is directly in it,
    and from everything under it when the home itself was open (an older home, a
    folder made by hand such as a checkout's ``sandbox/``)."""
    st = os.stat(root)
    deep = bool(st.st_mode & OPEN_BITS)
    _tighten_path(root, st.st_mode)
    if deep:
        for top, dirs, files in os.walk(root):
            for name in (*dirs, *files):
                _tighten_entry(os.path.join(top, name))
    else:
        with os.scandir(root) as entries:
            for entry in entries:
                _tighten_entry(entry.path)
    _tightened.add(root)


def ensure(root: str) -> None:
    """Create the folder tree (mode 0700) if it is missing, tighten it if it was open to
    others (once a process, see ``tighten``)."""
    if not os.path.exists(root):
        os.makedirs(root, mode=0o700)
        os.chmod(root, 0o700)
    for name in SUBFOLDERS:
        sub = os.path.join(root, name)
        try:
            os.mkdir(sub, 0o700)
        except FileExistsError:
            if not os.path.isdir(sub):
                raise
    if root not in _tightened:
        tighten(root)
