"""Issue 12: the overview is rendered once and served again while nothing it shows changed;
any commit, a daemon started or stopped, the next second, or another caller renders afresh."""

import json
import os
import sqlite3
import time

import pytest

from localtailr import store
from localtailr.platform import changes, kv, users
from localtailr.platform.context import context
from localtailr.web import page_cache, pages, security
from localtailr.web.app import create_app


class Clock:
    """The page cache's clock, held still so that only what a test changes moves a page."""

    def __init__(self):
        self.now = time.time()

    def time(self):
        return self.now


@pytest.fixture
def home(localtailr_home):
    return localtailr_home.home


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(page_cache, "time", c)
    return c


@pytest.fixture
def renders(monkeypatch):
    """How many times the overview was rendered."""
    count = []
    real = pages._overview

    def counting():
        count.append(1)
        return real()

    monkeypatch.setattr(pages, "_overview", counting)
    return count


@pytest.fixture
def client(home):
    c = create_app(home).test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {security.token(home)}"
    return c


def page(client, path="/", status=200, **kw):
    resp = client.get(path, **kw)
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_data(as_text=True)


def test_the_same_page_is_served_again_while_nothing_changed(client, home, clock, renders):
    kv.put(context(home, "root", "dev"), "one", "1")
    first = page(client)
    assert "1 key<" in first and [page(client) for _ in range(5)] == [first] * 5
    assert len(renders) == 1


def test_a_commit_anywhere_shows_at_the_next_request(client, home, clock, renders):
    root = context(home, "root", "dev")
    kv.put(root, "one", "1")
    assert "1 key<" in page(client)
    kv.put(root, "two", "2")  # this thread's own connection
    assert "2 keys<" in page(client)
    other = sqlite3.connect(home.db_path, isolation_level=None)  # another process's, say
    other.execute("DELETE FROM kv WHERE key = 'two'")
    other.close()
    assert "1 key<" in page(client)
    page(client)
    assert len(renders) == 3  # the clock never moved: each change was seen through the store


def test_time_and_the_daemon_file_make_a_new_page(client, home, clock, renders):
    assert "not running" in page(client)
    (home.root / "daemon.json").write_text(json.dumps({"pid": os.getpid(), "started_at": clock.now - 5}))
    body = page(client)
    assert "not running" not in body and "up 5s" in body
    assert page(client) == body and len(renders) == 2
    clock.now += 1  # the next second: uptimes and "ago" times are rendered afresh
    page(client)
    assert len(renders) == 3


def test_each_caller_gets_their_own_page(client, home, clock, renders):
    root = context(home, "root", "dev")
    ann = users.add(root, "ann")["name"]
    kv.put(root, "for-root", "r")
    kv.put(root, "for-ann", "a", {"read": [users.get(root, ann)["user_id"]], "write": [0]})
    mine = page(client)
    assert "2 keys<" in mine and "you are root" in mine
    as_ann = page(client, "/?as=ann")
    assert "1 key<" in as_ann and "you are ann" in as_ann
    by_header = page(client, headers={"X-Localtailr-User": "ann"})
    assert "1 key<" in by_header and "you are ann" in by_header
    assert page(client) == mine and len(renders) == 2  # ?as= and the header name one caller
    # ann's rights change: her kept page goes with them, root's is served again
    kv.set_acls(root, "for-root", {"read": [0, users.get(root, ann)["user_id"]], "write": [0]})
    assert "2 keys<" in page(client, "/?as=ann")


def test_a_cached_page_is_no_way_round_the_check_on_acting_as_another(home, clock, renders):
    root = context(home, "root", "dev")
    users.add(root, "ann")
    as_root = create_app(home).test_client()
    as_ann = create_app(home, "ann").test_client()
    for c in (as_root, as_ann):
        c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {security.token(home)}"
    assert "you are ann" in page(as_root, "/?as=ann")
    assert "you are root" in page(as_root)
    assert "you are ann" in page(as_ann)
    page(as_ann, "/?as=root", status=403)
    page(as_ann, "/?as=root", status=403)


def test_stamp_changes_at_every_commit_and_only_then(home):
    conn = store.connection(home)
    before = changes.stamp(home)
    conn.execute("SELECT count(*) FROM kv").fetchone()
    assert changes.stamp(home) == before
    kv.put(context(home, "root", "dev"), "k", "v")
    after = changes.stamp(home)
    assert after != before and changes.stamp(home) == after
    other = sqlite3.connect(home.db_path, isolation_level=None)
    other.execute("UPDATE kv SET value = 'w'")
    other.close()
    assert changes.stamp(home) != after


def test_watchers_are_bounded_and_reopened_for_a_new_file(tmp_path, home):
    """Many homes watched in one process keep at most MAX_WATCHED connections open; a
    home whose database file was made again is watched afresh."""
    from localtailr.core.home import Home

    homes = [Home(tmp_path / f"h{i}").ensure() for i in range(changes.MAX_WATCHED + 3)]
    for h in homes:
        changes.stamp(h)
    assert len(changes._watchers) <= changes.MAX_WATCHED
    h = homes[-1]
    changes.stamp(h)
    store.forget(h)
    for suffix in ("", "-wal", "-shm"):
        (h.root / (h.db_path.name + suffix)).unlink(missing_ok=True)
    store.connection(h)
    again = changes.stamp(h)
    kv.put(context(h, "root", "dev"), "k", "v")
    assert changes.stamp(h) != again
    for x in homes:
        store.forget(x)
