"""``Blob``: binary large object storage."""

from __future__ import annotations

import os

from ..platform import blob as _blob
from ..platform import blob_history as _history
from ..platform import lineage as _lineage
from .acl import ACL, acl_dict
from .calling import caller
from .commit import Commit


class Blob:
    """Interface for blob storage: each blob is identified by a name such as "reports/q1.csv".

    Example::

        from localtailr import Blob
        blob = Blob()
        blob.put_blob("greeting", b"Hello, world!")
        data = blob.get_blob("greeting")
    """

    def put_blob(self, name: str, blob: bytes | str, acl: ACL | None = None) -> None:
        """Put a blob object (bytes or str) into the blob storage."""
        _blob.put(caller(), name, blob, acl_dict(acl))

    def get_blob(self, name: str, version: int | None = None) -> bytes:
        """The blob's content as bytes (its current version, or ``version``)."""
        return _blob.get(caller(), name, version)

    def put_file(self, name: str, path: str | os.PathLike, acl: ACL | None = None) -> None:
        """Copy a local file to a blob, streamed."""
        _blob.put_file(caller(), name, path, acl_dict(acl))

    def get_file(self, name: str, path: str | os.PathLike, version: int | None = None) -> None:
        """Copy a blob (its current version, or ``version``) to a local file, streamed."""
        _blob.get_file(caller(), name, path, version=version)

    # The published SDK's names for the same.
    def put(self, name: str, blob: bytes | str, acl: ACL | None = None) -> None:
        """Same as ``put_blob``."""
        self.put_blob(name, blob, acl)

    def get(self, name: str, version: int | None = None) -> bytes:
        """Same as ``get_blob``."""
        return self.get_blob(name, version)

    def ls(self, path: str = "") -> list[str]:
        """Names of the blobs under ``path`` (a folder, "" for all)."""
        return [e["name"] for e in _blob.ls(caller(), path)]

    def exists(self, name: str) -> bool:
        return _blob.exists(caller(), name)

    def delete(self, name: str) -> None:
        _blob.delete(caller(), name)

    def stat(self, name: str) -> dict:
        """Size, sha256 and time of the last write."""
        return _blob.stat(caller(), name)

    # localtailr's history, beside the SDK's names.
    def history(self, name: str) -> list[dict]:
        """Every kept version, oldest first: version, time, size, sha256, deleted, who,
        run_id, task, commit_id."""
        return _history.history(caller(), name)

    def restore(self, name: str, version: int) -> int:
        """Make ``version``'s content current again (as a new version, returned); needs WRITE."""
        return _history.restore(caller(), name, version)["version"]

    def diff(self, name: str, a: int, b: int) -> str:
        """A unified diff of versions ``a`` and ``b`` of a text blob."""
        return _history.diff(caller(), name, a, b)

    def lineage(self, name: str, version: int | None = None) -> dict:
        """Which run wrote this version, from which inputs, and which runs read it."""
        return _lineage.blob(caller(), name, version)

    def commit(self, message: str) -> Commit:
        """A commit: ``with Blob().commit("msg") as c: c.put(...)``; all of it or nothing."""
        return Commit(message)

    def get_acl(self, name: str) -> ACL:
        return ACL.from_dict(_blob.get_acl(caller(), name))

    def set_acl(self, name: str, acl: ACL) -> None:
        _blob.set_acl(caller(), name, acl_dict(acl))

    def __repr__(self) -> str:
        return "Blob()"
