"""``Blob``: binary large object storage."""

from __future__ import annotations

import os

from ..platform import blob as _blob
from .acl import ACL, acl_dict
from .calling import caller


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

    def get_blob(self, name: str) -> bytes:
        """The blob's content as bytes."""
        return _blob.get(caller(), name)

    def put_file(self, name: str, path: str | os.PathLike, acl: ACL | None = None) -> None:
        """Copy a local file to a blob, streamed."""
        _blob.put_file(caller(), name, path, acl_dict(acl))

    def get_file(self, name: str, path: str | os.PathLike) -> None:
        """Copy a blob to a local file, streamed."""
        _blob.get_file(caller(), name, path)

    # The published SDK's names for the same.
    def put(self, name: str, blob: bytes | str, acl: ACL | None = None) -> None:
        """Same as ``put_blob``."""
        self.put_blob(name, blob, acl)

    def get(self, name: str) -> bytes:
        """Same as ``get_blob``."""
        return self.get_blob(name)

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

    def get_acl(self, name: str) -> ACL:
        return ACL.from_dict(_blob.get_acl(caller(), name))

    def set_acl(self, name: str, acl: ACL) -> None:
        _blob.set_acl(caller(), name, acl_dict(acl))

    def __repr__(self) -> str:
        return "Blob()"
