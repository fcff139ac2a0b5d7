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
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "LOCALTAILR_HOME"


def default_path() -> Path:
    """The home folder to use: ``LOCALTAILR_HOME`` read at call time, else ``~/.localtailr``."""
    value = os.environ.get(ENV_VAR)
    if value:
        return Path(value).expanduser().absolute()
    return Path("~/.localtailr").expanduser()


@dataclass(frozen=True)
class Home:
    """A localtailr home folder and the paths inside it."""

    root: Path

    @classmethod
    def current(cls) -> Home:
        return cls(default_path())

    @property
    def db_path(self) -> Path:
        return self.root / "state.db"

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
        """Create the folder tree (mode 0700) if it is missing; return self."""
        if not self.root.exists():
            self.root.mkdir(parents=True, mode=0o700)
            os.chmod(self.root, 0o700)
        for sub in (self.blobs, self.venvs, self.runs):
            sub.mkdir(mode=0o700, exist_ok=True)
        return self

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
