"""Where localtailr keeps its state: one folder, the *home*.

Layout::

    <home>/state.db        the one SQLite database (WAL)
    <home>/secret.key      Fernet key for secrets (0600)
    <home>/token           the web token (0600)
    <home>/blobs/          blob contents, named by path
    <home>/venvs/          cached job environments, one folder per image key
    <home>/runs/<id>/      a run's working folder, stdout and stderr

``LOCALTAILR_HOME`` (or ``--home`` on the command line) chooses the folder;
the default is ``~/.localtailr``.

The home is private: folders 0700, files 0600 (executables in job environments 0700).
localtailr's own processes (the command line, the daemon and what it starts) run with
umask 077 (``private_umask``); files the Python API creates from a user's process are
created with explicit modes. A home found open to others (a folder made by hand, an
older version's home) is tightened, all the way down, the first time it is opened.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import home_folder, settings
from .home_folder import OPEN_BITS

ENV_VAR = home_folder.ENV_VAR
PRIVATE_UMASK = 0o077
USER_UMASK_VAR = settings.USER_UMASK.name  # the caller's umask, octal, for job processes


def private_umask() -> int:
    """Make this process create files 0600 and folders 0700 (for localtailr's own processes:
    the command line, the daemon); the previous umask. The first one remembers it in
    ``LOCALTAILR_USER_UMASK`` (inherited by children): jobs run user code with it."""
    old = os.umask(PRIVATE_UMASK)
    os.environ.setdefault(USER_UMASK_VAR, f"{old:03o}")
    return old


def user_umask() -> int:
    """The umask of the user who started localtailr (see ``private_umask``); this process's
    own when none was remembered."""
    try:
        return int(os.environ[USER_UMASK_VAR], 8) & 0o777
    except (KeyError, ValueError):
        current = os.umask(0)
        os.umask(current)
        return current


def default_path() -> Path:
    """The home folder to use: ``LOCALTAILR_HOME`` read at call time, else ``~/.localtailr``."""
    return Path(home_folder.default_root())


class Home:
    """A localtailr home folder and the paths inside it (immutable, hashable).

    A plain class, not a dataclass: importing dataclasses (and inspect with it) would
    cost every command-line call a few milliseconds."""

    __slots__ = ("root",)
    root: Path

    def __init__(self, root: Path):
        object.__setattr__(self, "root", root)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: Home is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: Home is immutable")

    def __eq__(self, other: object) -> bool:
        return self.root == other.root if type(other) is Home else NotImplemented

    def __hash__(self) -> int:
        return hash((self.root,))

    def __repr__(self) -> str:
        return f"Home(root={self.root!r})"

    def __reduce__(self):
        return (Home, (self.root,))

    @classmethod
    def current(cls) -> Home:
        return cls(default_path())

    @property
    def db_path(self) -> Path:
        return self.root / home_folder.DB_NAME

    @property
    def key_file(self) -> Path:
        return self.root / "secret.key"

    @property
    def token_file(self) -> Path:
        return self.root / "token"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def venvs(self) -> Path:
        return self.root / "venvs"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run_dir(self, run_id: int) -> Path:
        return self.runs / str(int(run_id))

    def ensure(self) -> Home:
        """Create the folder tree (mode 0700) if it is missing, tighten it if it was open
        to others (see ``tighten``); return self."""
        home_folder.ensure(str(self.root))
        return self

    def tighten(self) -> None:
        """Take group and other permissions away: from the home and what is directly in it,
        and from everything under it when the home itself was open (an older home, a
        folder made by hand such as a checkout's ``sandbox/``)."""
        home_folder.tighten(str(self.root))

    def open_private(self, path: Path, append: bool = True) -> int:
        """A descriptor on ``path`` for writing (appending unless ``append`` is false),
        created 0600 (and made 0600 if it was not)."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        fd = os.open(path, flags, 0o600)
        if os.fstat(fd).st_mode & OPEN_BITS:
            os.fchmod(fd, 0o600)
        return fd

    def write_private(self, path: Path, data: bytes) -> None:
        """Write a file readable by its owner only (0600), atomically."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk must not keep a half-written copy
            raise
