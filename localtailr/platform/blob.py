"""``blob put|get|ls|exists|rm|get-acl|set-acl``.

Blob contents are stored by their sha256 under ``<home>/blobs/objects/``, the
way git stores objects; the ``blobs`` table maps each name to its content. A
put streams into a temporary file (hashing as it goes), fsyncs it, renames it
into place and only then records the name, in one transaction: a reader sees
the old blob or the new one, never half of one, and a killed writer leaves at
most an unreferenced temporary file that the next put sweeps away.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .. import store
from ..core import names
from ..core.errors import NotFoundError
from . import acl
from .context import Context

CHUNK = 1 << 20
RECENT = 10.0  # seconds
_SEGMENT = re.compile(r"^[^\x00-\x1f\x7f/\\]+$")


def validate_name(name: object) -> str:
    """A blob name is a relative path of non-empty segments ("reports/2026/q1.csv").

    Refused: empty names, absolute paths, ``.`` and ``..`` segments, empty
    segments (``a//b``, a trailing ``/``), backslashes, NUL and other control
    characters, names over 1024 characters.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"invalid blob name {name!r}: a blob name is a non-empty string")
    why = None
    if len(name) > 1024:
        why = "longer than 1024 characters"
    elif name.startswith("/"):
        why = "absolute paths are not allowed"
    elif "\\" in name:
        why = "backslashes are not allowed"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        why = "control characters (NUL included) are not allowed"
    elif not names.encodable(name):
        why = "it is not valid Unicode (lone surrogates are not allowed)"
    else:
        for segment in name.split("/"):
            if segment in ("", ".", ".."):
                why = "empty, '.' and '..' segments are not allowed"
                break
            if not _SEGMENT.fullmatch(segment):
                why = f"segment {segment!r} is not allowed"
                break
    if why:
        raise ValueError(f"invalid blob name {name!r}: {why}; use a relative path like 'reports/q1.csv'")
    return name


def resource(name: str) -> str:
    return f"blob/{name}"


def _objects(ctx: Context) -> Path:
    path = ctx.home.blobs / "objects"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _tmp(ctx: Context) -> Path:
    path = ctx.home.blobs / "tmp"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def object_path(ctx: Context, sha256: str) -> Path:
    return _objects(ctx) / sha256[:2] / sha256[2:]


class _LocalFile:
    """A local file given to put(): copied by the kernel while a thread hashes it."""

    def __init__(self, path: Path):
        self.path = path


def _copy_fd(src: int, dst: int, progress=None) -> int:
    """Copy what is left of ``src`` into ``dst``: in the kernel where it can
    (copy_file_range, as cp does), else through one reused buffer. Returns bytes copied."""
    done = 0
    try:
        while n := os.copy_file_range(src, dst, 64 * CHUNK):
            done += n
            if progress:
                progress(done)
        return done
    except OSError:
        if done:
            raise
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while n := os.readv(src, [buf]):
        os.write(dst, view[:n])
        done += n
        if progress:
            progress(done)
    return done


def _hash_file(path: Path | int) -> str:
    digest = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0, closefd=not isinstance(path, int)) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])  # releases the GIL: runs beside the copy
    return digest.hexdigest()


def _copy_and_hash(path: Path, dst: int, progress=None) -> tuple[str, int]:
    """Copy the file at ``path`` into ``dst`` and hash it, at once; (sha256, size)."""
    import threading

    before = os.stat(path)
    result: dict = {}

    def hash_source() -> None:
        try:
            result["sha"] = _hash_file(path)
        except BaseException as exc:  # reported below
            result["error"] = exc

    hasher = threading.Thread(target=hash_source, daemon=True)
    with open(path, "rb", buffering=0) as src:
        hasher.start()
        try:
            size = _copy_fd(src.fileno(), dst, progress)
            # write the copy to disk while the hasher is still reading: both release the GIL
            os.fsync(dst)
        finally:
            hasher.join()
    after = os.stat(path)
    changed = (before.st_size, before.st_mtime_ns, before.st_ino) != (
        after.st_size, after.st_mtime_ns, after.st_ino
    ) or size != after.st_size
    if "error" in result or changed:
        # the source changed while it was copied: hash what was stored
        with open(f"/proc/self/fd/{dst}", "rb") as copy:
            return _hash_file(copy.fileno()), size
    return result["sha"], size


def _chunks_of(data: bytes | str | BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    if isinstance(data, str):
        yield data.encode()
    elif isinstance(data, (bytes, bytearray, memoryview)):
        yield bytes(data)
    elif hasattr(data, "readinto"):
        buf = bytearray(CHUNK)  # one buffer reused: no fresh 1 MiB allocation a chunk
        view = memoryview(buf)
        while n := data.readinto(buf):
            yield view[:n]
    elif hasattr(data, "read"):
        while chunk := data.read(CHUNK):
            yield chunk
    else:
        try:
            for chunk in data:
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise TypeError
                yield chunk
        except TypeError:
            raise ValueError(
                f"a blob is bytes, a str, a binary file or an iterable of bytes, not {type(data).__name__}"
            ) from None


def put(
    ctx: Context,
    name: str,
    data: bytes | str | BinaryIO | Iterable[bytes],
    acl_: dict | None = None,
    progress=None,
) -> dict:
    """Store ``data`` as blob ``name``; returns its name, size and sha256. Needs WRITE to replace."""
    validate_name(name)
    new_acl = acl.normalise(acl_) if acl_ is not None else None
    res = resource(name)
    _check_writable(ctx, name, res)
    tmp = _tmp(ctx) / f"{uuid.uuid4().hex}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb", buffering=0) as f:
            if isinstance(data, _LocalFile):
                sha, size = _copy_and_hash(data.path, f.fileno(), progress)
            else:
                for chunk in _chunks_of(data):
                    digest.update(chunk)
                    f.write(chunk)
                    size += len(chunk)
                    if progress:
                        progress(size)
                sha = digest.hexdigest()
            os.fsync(f.fileno())
        target = object_path(ctx, sha)
        target.parent.mkdir(exist_ok=True, mode=0o700)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    old = None
    with store.transaction(ctx.conn) as conn:
        row = conn.execute("SELECT sha256 FROM blobs WHERE name = ?", (name,)).fetchone()
        if row is not None:
            acl.require(ctx, res, "write", "replace blob")
            old = row[0]
        if new_acl is not None:
            acl.check_principals(conn, new_acl)
        conn.execute(
            "INSERT INTO blobs (name, size, sha256, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256,"
            " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            (name, size, sha, time.time(), ctx.caller.user_id),
        )
        if new_acl is not None:
            acl.replace(conn, res, new_acl)
        elif row is None:
            acl.replace(conn, res, acl.owner_acl(ctx.caller.user_id))
    if old and old != sha:
        _drop_if_unused(ctx, old)
    return {"name": name, "size": size, "sha256": sha}


def _check_writable(ctx: Context, name: str, res: str) -> None:
    # Checked before the (possibly long) copy so a denied put costs nothing; checked
    # again inside the transaction in case the blob appeared meanwhile.
    if ctx.conn.execute("SELECT 1 FROM blobs WHERE name = ?", (name,)).fetchone():
        acl.require(ctx, res, "write", "replace blob")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _drop_if_unused(ctx: Context, sha: str) -> None:
    # An object written in the last few seconds may belong to a put that has
    # renamed it into place but not yet committed its row: leave it to sweep().
    path = object_path(ctx, sha)
    with store.transaction(ctx.conn) as conn:
        if conn.execute("SELECT 1 FROM blobs WHERE sha256 = ? LIMIT 1", (sha,)).fetchone() is None:
            try:
                if time.time() - path.stat().st_mtime > RECENT:
                    path.unlink()
            except FileNotFoundError:
                pass


def stat(ctx: Context, name: str) -> dict:
    """Name, size, sha256 and when it was written; needs READ."""
    validate_name(name)
    row = ctx.conn.execute(
        "SELECT name, size, sha256, updated_at FROM blobs WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"blob {name!r} not found")
    acl.require(ctx, resource(name), "read", "read blob")
    return dict(row)


def open_blob(ctx: Context, name: str) -> BinaryIO:
    """An open binary file with the blob's content; needs READ."""
    for _ in range(5):
        info = stat(ctx, name)
        try:
            return open(object_path(ctx, info["sha256"]), "rb")
        except FileNotFoundError:
            continue  # replaced and swept between the lookup and the open: look again
    raise NotFoundError(f"blob {name!r} not found")


def get(ctx: Context, name: str) -> bytes:
    """The blob's content as bytes; needs READ."""
    with open_blob(ctx, name) as f:
        return f.read()


def get_file(ctx: Context, name: str, path: str | os.PathLike, progress=None) -> dict:
    """Copy blob ``name`` to the local file ``path`` (atomically: a temporary file, then rename)."""
    dest = Path(path)
    if dest.is_dir():
        raise ValueError(f"{dest} is a folder: give the path of the file to write")
    if not dest.parent.exists():
        raise ValueError(f"cannot write {dest}: folder {dest.parent} does not exist")
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    with open_blob(ctx, name) as src:
        try:
            with open(tmp, "wb", buffering=0) as out:
                _copy_fd(src.fileno(), out.fileno(), progress)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return stat(ctx, name)


def put_file(ctx: Context, name: str, path: str | os.PathLike, acl_: dict | None = None, progress=None) -> dict:
    """Copy the local file ``path`` into blob ``name``, streamed."""
    src = Path(path)
    if not src.is_file():
        raise ValueError(f"cannot read {src}: not a file")
    return put(ctx, name, _LocalFile(src), acl_, progress)


def exists(ctx: Context, name: str) -> bool:
    validate_name(name)
    return ctx.conn.execute("SELECT 1 FROM blobs WHERE name = ?", (name,)).fetchone() is not None


def ls(ctx: Context, path: str = "") -> list[dict]:
    """Blobs under folder ``path`` ("" for all) that the caller may read: name, size, sha256."""
    prefix = ""
    names.text(path, "the path of blob ls (a folder)")
    if path not in ("", "/", None):
        prefix = validate_name(path.rstrip("/")) + "/"
    rows = ctx.conn.execute(
        "SELECT name, size, sha256, updated_at FROM blobs WHERE substr(name, 1, ?) = ? ORDER BY name",
        (len(prefix), prefix),
    ).fetchall()
    return [dict(r) for r in rows if acl.allowed(ctx, resource(r["name"]), "read")]


def delete(ctx: Context, name: str) -> None:
    """Remove blob ``name``; needs WRITE."""
    validate_name(name)
    res = resource(name)
    with store.transaction(ctx.conn) as conn:
        row = conn.execute("SELECT sha256 FROM blobs WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"blob {name!r} not found")
        acl.require(ctx, res, "write", "delete blob")
        conn.execute("DELETE FROM blobs WHERE name = ?", (name,))
        acl.remove(conn, res)
    _drop_if_unused(ctx, row[0])


def get_acl(ctx: Context, name: str) -> dict:
    stat(ctx, name)
    return acl.get(ctx.conn, resource(name))


def set_acl(ctx: Context, name: str, acl_: dict) -> dict:
    """Replace the blob's ACL; needs WRITE."""
    new_acl = acl.normalise(acl_)
    validate_name(name)
    with store.transaction(ctx.conn) as conn:
        if not exists(ctx, name):
            raise NotFoundError(f"blob {name!r} not found")
        acl.require(ctx, resource(name), "write", "change the ACL of blob")
        acl.check_principals(conn, new_acl)
        acl.replace(conn, resource(name), new_acl)
        return acl.get(conn, resource(name))


def sweep(ctx: Context, older_than: float = 3600) -> int:
    """Remove temporary files left by killed writers and unreferenced objects; returns how many."""
    cutoff = time.time() - older_than
    n = 0
    for p in _tmp(ctx).glob("*.part"):
        try:
            if p.stat().st_mtime < cutoff:
                p.unlink()
                n += 1
        except FileNotFoundError:
            pass
    used = {r[0] for r in ctx.conn.execute("SELECT DISTINCT sha256 FROM blobs")}
    for p in _objects(ctx).glob("*/*"):
        sha = p.parent.name + p.name
        if sha not in used:
            try:
                if p.stat().st_mtime < time.time() - RECENT:
                    p.unlink()
                    n += 1
            except FileNotFoundError:
                pass
    return n
