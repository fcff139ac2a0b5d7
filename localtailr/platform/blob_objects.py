"""Blob objects: each content stored once, by its sha256, under ``<home>/blobs/objects/``.

An object is checked when it is read. Hashing every read would cost as much as the
read, so the ``blob_objects`` table keeps a *stamp* of the file as last verified
(size, mtime, ctime, inode): a file whose stamp still matches has not been written
since, and is served as is; any other is hashed in full first, and refused if its
hash is wrong. (Rot that changes no stamp is what ``localtailr fsck`` is for: it
hashes every object.)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

from .. import store
from ..core.errors import LocaltailrError
from .context import Context

CHUNK = 1 << 20


class CorruptBlobError(LocaltailrError, OSError):
    """A blob object whose content no longer has its sha256: refused rather than served."""


def objects_dir(ctx: Context) -> Path:
    path = ctx.home.blobs / "objects"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def tmp_dir(ctx: Context) -> Path:
    path = ctx.home.blobs / "tmp"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def object_path(ctx: Context, sha256: str) -> Path:
    return objects_dir(ctx) / sha256[:2] / sha256[2:]


def stamp(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


def hash_fd(fd: int) -> str:
    """The sha256 of what the open file ``fd`` holds, read from its start."""
    digest = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    offset = 0
    while n := os.preadv(fd, [buf], offset):
        digest.update(view[:n])  # releases the GIL
        offset += n
    return digest.hexdigest()


def open_verified(ctx: Context, sha256: str, what: str) -> BinaryIO:
    """The object ``sha256``, open for reading, after checking it still has that hash.

    FileNotFoundError when it is gone; CorruptBlobError (naming ``what``) when its
    content changed.
    """
    f = open(object_path(ctx, sha256), "rb")
    try:
        st = os.fstat(f.fileno())
        now = stamp(st)
        row = ctx.conn.execute(
            "SELECT stamp FROM blob_objects WHERE sha256 = ?", (sha256,)
        ).fetchone()
        if row is not None and row[0] == now:
            return f
        if hash_fd(f.fileno()) != sha256:
            raise CorruptBlobError(
                f"{what} is corrupt: its object {sha256[:12]}... no longer has that sha256"
                " (run `localtailr fsck`); refusing to return wrong bytes"
            )
        store.write(
            ctx.conn,
            "INSERT INTO blob_objects (sha256, size, stamp) VALUES (?, ?, ?)"
            " ON CONFLICT (sha256) DO UPDATE SET stamp = excluded.stamp",
            (sha256, st.st_size, now),
        )
        return f
    except BaseException:
        f.close()
        raise


def check(ctx: Context, sha256: str, size: int | None) -> str | None:
    """What is wrong with object ``sha256`` (missing, wrong size, wrong hash), or None."""
    path = object_path(ctx, sha256)
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if size is not None and st.st_size != size:
                return f"object {path} has {st.st_size} bytes, not {size}"
            if hash_fd(f.fileno()) != sha256:
                return f"object {path} does not have its sha256 (corrupt)"
    except FileNotFoundError:
        return f"object {path} is missing"
    return None
