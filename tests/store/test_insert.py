"""``store.insert``: an INSERT and the rowid it made."""

from __future__ import annotations

from localtailr import store


def test_store_insert_answers_the_new_rowid(localtailr_home):
    conn = store.connection(localtailr_home.home)
    with store.transaction(conn):
        first = store.insert(conn, "INSERT INTO groups (name, created_at) VALUES (?, 0)", ("g1",))
        second = store.insert(conn, "INSERT INTO groups (name, created_at) VALUES (?, 0)", ("g2",))
    assert second == first + 1
    assert conn.execute("SELECT name FROM groups WHERE group_id = ?", (first,)).fetchone()[0] == "g1"
