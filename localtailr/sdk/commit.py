"""``Commit``: blob and key writes that become visible together, or not at all."""

from __future__ import annotations

import os

from ..platform import commits as _commits
from .acl import ACL, acl_dict
from .calling import caller


class _CommitKV:
    """The key writes of a commit (plain keys of the caller's environment)."""

    def __init__(self, staged: _commits.Commit):
        self._staged = staged

    def put(self, key: str, value: str, acl: ACL | None = None) -> None:
        self._staged.kv_put(key, value, acl_dict(acl))

    def delete(self, key: str) -> None:
        self._staged.kv_delete(key)


class Commit:
    """A group of blob and key writes applied together when the ``with`` block ends.

    Example::

        with Blob().commit("load 2026-11-25") as c:
            c.put("daily/prices.csv", data)
            c.put_file("daily/raw.parquet", "/tmp/raw.parquet")
            c.delete("daily/old.csv")
            c.kv.put("daily.loaded", "2026-11-25")
        print(c.id)

    If the block raises (or the process dies) nothing of it is visible.
    """

    def __init__(self, message: str):
        self._staged = _commits.Commit(caller(), message)
        self.kv = _CommitKV(self._staged)
        self.info: dict | None = None

    @property
    def id(self) -> int | None:
        """The commit's id, once applied."""
        return self.info["commit_id"] if self.info else None

    def put(self, name: str, blob: bytes | str, acl: ACL | None = None) -> None:
        self._staged.put(name, blob, acl_dict(acl))

    def put_file(self, name: str, path: str | os.PathLike, acl: ACL | None = None) -> None:
        self._staged.put_file(name, path, acl_dict(acl))

    def delete(self, name: str) -> None:
        self._staged.delete(name)

    def __enter__(self) -> Commit:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.info = self._staged.apply()
        else:
            self._staged.abort()

    def __repr__(self) -> str:
        return f"Commit({self._staged.message!r}, id={self.id})"
