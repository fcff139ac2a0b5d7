"""A pytest plugin: each test gets its own isolated localtailr.

Installed with localtailr (entry point ``pytest11``), so any project's tests can use::

    def test_config(localtailr_home):
        from localtailr import KV
        KV().put("db_url", "sqlite://")
        assert KV().get("db_url") == "sqlite://"

The fixture points ``LOCALTAILR_HOME`` at a fresh folder, clears the signed-in
user and the environment, and gives the Python API that home. A daemon started
in it (by a job's ``.run()``) is stopped at the end of the test, with its runs.
``localtailr_home.clock`` moves the home's clock for schedule tests. It costs a few
milliseconds: the database schema is built once a session and copied.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import store
from .core.home import Home

_template: Path | None = None


def _template_db() -> Path:
    # Building the schema once and copying the file is far cheaper than
    # running the migrations for every test.
    global _template
    if _template is None or not _template.exists():
        folder = Path(tempfile.mkdtemp(prefix="localtailr-template-"))
        home = Home(folder / "home")
        conn = store.connect(home)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.close()
        _template = home.db_path
    return _template


def make_home(path: Path) -> Home:
    """A fresh, migrated home at ``path`` (which must not exist yet)."""
    home = Home(path)
    home.ensure()
    shutil.copyfile(_template_db(), home.db_path)
    os.chmod(home.db_path, 0o600)
    return home


class Runtime:
    """An isolated localtailr for one test: its home, and helpers to act in it."""

    def __init__(self, home: Home, monkeypatch: pytest.MonkeyPatch):
        self.home = home
        self._mp = monkeypatch

    @property
    def root(self) -> Path:
        return self.home.root

    def as_user(self, name: str | None) -> None:
        """Act as ``name`` from now on (None: back to root)."""
        if name is None:
            self._mp.delenv("LOCALTAILR_USER", raising=False)
        else:
            self._mp.setenv("LOCALTAILR_USER", name)

    def use_environment(self, environment: str | None) -> None:
        if environment is None:
            self._mp.delenv("DATATAILR_JOB_ENVIRONMENT", raising=False)
        else:
            self._mp.setenv("DATATAILR_JOB_ENVIRONMENT", environment)

    @property
    def clock(self):
        """The home's clock (``store.clock.Clock``): ``freeze``, ``advance``, ``reset``."""
        from .store.clock import clock  # the store loads only for tests that use the clock

        return clock(self.home)

    def start_daemon(self) -> dict:
        """Start this home's daemon (the first ``.run()`` would anyway); its info."""
        from .runtime import client  # the runtime loads only for tests that use it

        return client.ensure_daemon(self.home, quiet=True)

    def stop_daemon(self) -> bool:
        """``localtailr down`` for this home: every run stopped, nothing left behind."""
        from .runtime import client  # the runtime loads only for tests that use it

        return client.stop_daemon(self.home)

    def __repr__(self) -> str:
        return f"Runtime(home={self.home.root})"


@pytest.fixture
def localtailr_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """An isolated localtailr home for this test, used by the whole Python API."""
    home = make_home(tmp_path / "localtailr-home")
    monkeypatch.setenv("LOCALTAILR_HOME", str(home.root))
    for var in ("LOCALTAILR_USER", "DATATAILR_JOB_ENVIRONMENT", "LOCALTAILR_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    runtime = Runtime(home, monkeypatch)
    yield runtime
    # A test that ran a job started a daemon on demand: stop it and its runs.
    if (home.root / "daemon.lock").exists():
        runtime.stop_daemon()
    store.forget(home)
