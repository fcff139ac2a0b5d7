"""A task's database connection opened before the task is known (``task_runner.prepare``,
in a fork server's child waiting for its run): the run takes it, unless the database was
made anew meanwhile; a home without a database is not made from there. Real SQLite files."""

from __future__ import annotations

import shutil

import pytest

from localtailr import store
from localtailr.core.home import Home
from localtailr.runtime.workflows import task_runner


@pytest.fixture(autouse=True)
def _nothing_opened_after():
    yield
    if task_runner._opened is not None:
        task_runner._opened[1].close()
        task_runner._opened = None


def test_the_run_takes_the_connection_opened_ahead(tmp_path):
    home = Home(tmp_path / "h")
    store.connect(home).close()
    task_runner.prepare(str(home.root))
    opened = task_runner._opened[1]
    conn = task_runner._connect(str(home.root))
    assert conn is opened and task_runner._opened is None
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    conn.close()


def test_a_database_made_anew_meanwhile_gets_a_new_connection(tmp_path):
    home = Home(tmp_path / "h")
    store.connect(home).close()
    task_runner.prepare(str(home.root))
    opened = task_runner._opened[1]
    shutil.rmtree(home.root)  # localtailr reset: a new home, a new database
    new = store.connect(home)
    new.execute("CREATE TABLE made_anew (x)")
    conn = task_runner._connect(str(home.root))
    assert conn is not opened
    assert conn.execute("SELECT count(*) FROM made_anew").fetchone()[0] == 0
    conn.close()


def test_a_home_without_a_database_is_not_made(tmp_path):
    home = Home(tmp_path / "h")
    task_runner.prepare(str(home.root))
    assert task_runner._opened is None and not home.root.exists()
