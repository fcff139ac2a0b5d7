"""``blob put|get|ls|exists|rm|get-acl|set-acl``, each write a new version.

Blob contents are stored by their sha256 under ``<home>/blobs/objects/``, the
way git stores objects (see ``blob_objects``); ``blob_versions`` keeps every
version of every name (a deletion is a version without content) and ``blobs``
the current one. A put streams into a temporary file (hashing as it goes) and
fsyncs it; then one transaction renames it into place (or drops it, when that
content is already stored) and records the new version: a reader sees the old
blob or the new one, never half of one, and a killed writer leaves at most a
temporary file that the garbage collector (``blob_gc``) removes.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .. import store
from ..core import names
from ..core.errors import NotFoundError
from . import acl, provenance
from .blob_objects import object_path, open_verified, stamp, tmp_dir
from .context import Context

CHUNK = 1 << 20
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


def _chunks_of(data: bytes | str | BinaryIO | Iterable[bytes]) -> Iterator[bytes | memoryview]:
    """``data`` in chunks (slices of one reused buffer for a file: use each before the next)."""
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


class Vanished(Exception):
    """The stored object a put meant to reuse was collected meanwhile: write it again."""


class Staged:
    """Content written and hashed, not yet part of any blob.

    ``tmp`` is its temporary file (None when that content is stored already);
    ``settle()``, inside the transaction that records it, moves it into place.
    ``source`` is the stamp of the local file it was copied from, when that file
    can be trusted not to change unseen (see ``stage``).
    """

    __slots__ = ("sha256", "size", "tmp", "source", "synced")

    def __init__(self, sha256: str, size: int, tmp: Path | None, source: str | None = None,
                 synced: bool = True):
        self.sha256, self.size, self.tmp, self.source = sha256, size, tmp, source
        self.synced = synced  # False: not fsynced, as that content was stored when it was copied

    def settle(self, ctx: Context, conn) -> None:
        target = object_path(ctx, self.sha256)
        if self.source is not None:
            conn.execute("INSERT OR REPLACE INTO blob_sources (stamp, sha256, recorded_at) VALUES (?, ?, ?)",
                         (self.source, self.sha256, time.time()))
        if self.tmp is None:
            if not target.exists():
                raise Vanished()
        elif target.exists():
            self.discard()  # that content is stored already: no new object
        else:
            if not self.synced:  # the stored copy vanished meanwhile: this one must be durable
                with open(self.tmp, "rb") as f:
                    os.fsync(f.fileno())
            target.parent.mkdir(exist_ok=True, mode=0o700)
            os.replace(self.tmp, target)
            self.tmp = None
            _fsync_dir(target.parent)
            conn.execute(
                "INSERT INTO blob_objects (sha256, size, stamp) VALUES (?, ?, ?) ON CONFLICT (sha256)"
                " DO UPDATE SET stamp = excluded.stamp", (self.sha256, self.size, stamp(target.stat())))
            return
        conn.execute("INSERT OR IGNORE INTO blob_objects (sha256, size) VALUES (?, ?)",
                     (self.sha256, self.size))

    def discard(self) -> None:
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None


def part_path(ctx: Context) -> Path:
    """A new temporary file's path; the writer's pid in its name tells the collector
    whether it may still be written to."""
    return tmp_dir(ctx) / f"{os.getpid()}-{uuid.uuid4().hex}.part"


# A local file last changed this close to when its copy began may change again within
# the same timestamp tick (the kernel's clock is coarse): its stamp is not trusted.
RACY_NS = 50_000_000


def source_stamp(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def stage(ctx: Context, data, progress=None) -> Staged:
    """Write and hash ``data`` into a temporary file; or, when that content is stored
    already, only hash it (bytes) or not even that (a local file put before, unchanged
    since: same device, inode, size, mtime and ctime, as git's index does)."""
    before = None
    if isinstance(data, _LocalFile):
        before = os.stat(data.path)
        row = ctx.conn.execute("SELECT sha256 FROM blob_sources WHERE stamp = ?",
                               (source_stamp(before),)).fetchone()
        if row is not None and object_path(ctx, row[0]).exists():
            return Staged(row[0], before.st_size, None)
    elif isinstance(data, (bytes, bytearray, memoryview, str)):
        raw = data.encode() if isinstance(data, str) else bytes(data)
        sha = hashlib.sha256(raw).hexdigest()
        if object_path(ctx, sha).exists():
            return Staged(sha, len(raw), None)
        data = raw
    tmp = part_path(ctx)
    digest = hashlib.sha256()
    size = 0
    start = time.time_ns()
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
            synced = not object_path(ctx, sha).exists()
            if synced:  # else the content is stored already: the copy never reaches the disk
                os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    source = None
    if before is not None:
        after = os.stat(data.path)
        if (source_stamp(after) == source_stamp(before) and after.st_size == size
                and max(after.st_mtime_ns, after.st_ctime_ns) < start - RACY_NS):
            source = source_stamp(after)
    return Staged(sha, size, tmp, source, synced)


def _retryable(data) -> bool:
    return isinstance(data, (_LocalFile, bytes, bytearray, memoryview, str))


def put(
    ctx: Context,
    name: str,
    data: bytes | str | BinaryIO | Iterable[bytes] | _LocalFile,
    acl_: dict | None = None,
    progress=None,
) -> dict:
    """Store ``data`` as a new version of blob ``name``; returns its name, version, size and
    sha256. Needs WRITE to replace. Content already stored is not stored again."""
    validate_name(name)
    new_acl = acl.normalise(acl_) if acl_ is not None else None
    check_writable(ctx, name)
    for attempt in range(3):
        staged = stage(ctx, data, progress)
        try:
            with store.transaction(ctx.conn) as conn:
                staged.settle(ctx, conn)
                return record_put(ctx, conn, name, staged.sha256, staged.size, new_acl)
        except Vanished:
            if attempt == 2 or not _retryable(data):
                raise RuntimeError(f"blob {name!r}: its content was collected while it was stored; put it again") from None
        finally:
            staged.discard()
    raise AssertionError("unreachable")


def _has_history_acl(conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM acl WHERE resource = ? LIMIT 1", (resource(name),)).fetchone() is not None


def check_writable(ctx: Context, name: str) -> None:
    # Checked before the (possibly long) copy so a denied put costs nothing; checked
    # again inside the transaction in case the blob appeared meanwhile.
    if _has_history_acl(ctx.conn, name):
        acl.require(ctx, resource(name), "write", "replace blob")


def _next_version(conn, name: str) -> int:
    return conn.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM blob_versions WHERE name = ?", (name,)
    ).fetchone()[0]


def record_put(ctx: Context, conn, name: str, sha: str, size: int, new_acl: dict | None,
               commit_id: int | None = None) -> dict:
    """Make stored content ``sha`` the next version of ``name`` (inside a transaction).

    A name keeps its ACL while it has history (deleted or not): replacing or
    re-creating it needs WRITE; a name never seen gets ``new_acl`` or its creator's.
    """
    res = resource(name)
    known = _has_history_acl(conn, name)
    if known:
        acl.require(ctx, res, "write", "replace blob")
    if new_acl is not None:
        acl.check_principals(conn, new_acl)
    version = _next_version(conn, name)
    now = time.time()
    conn.execute(
        "INSERT INTO blobs (name, size, sha256, updated_at, updated_by, version) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256,"
        " updated_at = excluded.updated_at, updated_by = excluded.updated_by, version = excluded.version",
        (name, size, sha, now, ctx.caller.user_id, version),
    )
    conn.execute(
        "INSERT INTO blob_versions (name, version, sha256, size, created_at, created_by, run_id, commit_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (name, version, sha, size, now, ctx.caller.user_id, provenance.current_run(), commit_id),
    )
    if new_acl is not None:
        acl.replace(conn, res, new_acl)
    elif not known:
        acl.replace(conn, res, acl.owner_acl(ctx.caller.user_id))
    return {"name": name, "version": version, "size": size, "sha256": sha}


def record_delete(ctx: Context, conn, name: str, commit_id: int | None = None) -> dict:
    """Make a deletion the next version of ``name`` (inside a transaction); needs WRITE.
    The name keeps its ACL, so that its history stays protected."""
    if conn.execute("SELECT 1 FROM blobs WHERE name = ?", (name,)).fetchone() is None:
        raise NotFoundError(f"blob {name!r} not found")
    acl.require(ctx, resource(name), "write", "delete blob")
    version = _next_version(conn, name)
    conn.execute("DELETE FROM blobs WHERE name = ?", (name,))
    conn.execute(
        "INSERT INTO blob_versions (name, version, sha256, size, created_at, created_by, run_id, commit_id)"
        " VALUES (?, ?, NULL, NULL, ?, ?, ?, ?)",
        (name, version, time.time(), ctx.caller.user_id, provenance.current_run(), commit_id),
    )
    return {"name": name, "version": version, "deleted": True}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"invalid version {version!r}: a version is a whole number from 1")
    return version


def stat(ctx: Context, name: str, version: int | None = None) -> dict:
    """Name, version, size, sha256 and when it was written; needs READ.

    ``version``: that version rather than the current one (NotFoundError when the
    blob never had it, it was collected, or it is a deletion).
    """
    validate_name(name)
    if version is None:
        row = ctx.conn.execute(
            "SELECT name, version, size, sha256, updated_at FROM blobs WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"blob {name!r} not found")
    else:
        check_version(version)
        row = ctx.conn.execute(
            "SELECT name, version, size, sha256, created_at AS updated_at FROM blob_versions"
            " WHERE name = ? AND version = ?", (name, version)).fetchone()
        if row is None:
            raise NotFoundError(f"blob {name!r} has no version {version}")
    acl.require(ctx, resource(name), "read", "read blob")
    if row["sha256"] is None:
        raise NotFoundError(f"blob {name!r} version {version} is a deletion: it has no content")
    return dict(row)


def open_blob(ctx: Context, name: str, version: int | None = None) -> BinaryIO:
    """An open binary file with the blob's content (checked against its sha256); needs READ."""
    for _ in range(5):
        info = stat(ctx, name, version)
        try:
            f = open_verified(ctx, info["sha256"], f"blob {name!r} version {info['version']}")
        except FileNotFoundError:
            if version is not None:
                raise NotFoundError(f"blob {name!r} version {version}: its content is missing"
                                    " (run `localtailr fsck`)") from None
            continue  # replaced and collected between the lookup and the open: look again
        provenance.record_read(ctx, resource(name), info["version"])
        return f
    raise NotFoundError(f"blob {name!r} not found")


def get(ctx: Context, name: str, version: int | None = None) -> bytes:
    """The blob's content as bytes (the current version, or ``version``); needs READ."""
    with open_blob(ctx, name, version) as f:
        return f.read()


def get_file(ctx: Context, name: str, path: str | os.PathLike, progress=None,
             version: int | None = None) -> dict:
    """Copy blob ``name`` to the local file ``path`` (atomically: a temporary file, then rename)."""
    dest = Path(path)
    if dest.is_dir():
        raise ValueError(f"{dest} is a folder: give the path of the file to write")
    if not dest.parent.exists():
        raise ValueError(f"cannot write {dest}: folder {dest.parent} does not exist")
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    with open_blob(ctx, name, version) as src:
        try:
            with open(tmp, "wb", buffering=0) as out:
                _copy_fd(src.fileno(), out.fileno(), progress)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return stat(ctx, name, version)


def local_file(path: str | os.PathLike) -> _LocalFile:
    """The local file ``path``, to be put (ValueError if it is not a readable file)."""
    src = Path(path)
    if not src.is_file():
        raise ValueError(f"cannot read {src}: not a file")
    return _LocalFile(src)


def put_file(ctx: Context, name: str, path: str | os.PathLike, acl_: dict | None = None, progress=None) -> dict:
    """Copy the local file ``path`` into blob ``name``, streamed."""
    return put(ctx, name, local_file(path), acl_, progress)


def exists(ctx: Context, name: str) -> bool:
    validate_name(name)
    return ctx.conn.execute("SELECT 1 FROM blobs WHERE name = ?", (name,)).fetchone() is not None


def ls(ctx: Context, path: str = "") -> list[dict]:
    """Blobs under folder ``path`` ("" for all) that the caller may read: name, version, size, sha256."""
    prefix = ""
    names.text(path, "the path of blob ls (a folder)")
    if path not in ("", "/", None):
        prefix = validate_name(path.rstrip("/")) + "/"
    rows = ctx.conn.execute(
        "SELECT name, version, size, sha256, updated_at FROM blobs WHERE substr(name, 1, ?) = ? ORDER BY name",
        (len(prefix), prefix),
    ).fetchall()
    return [dict(r) for r in rows if acl.allowed(ctx, resource(r["name"]), "read")]


def delete(ctx: Context, name: str) -> dict:
    """Remove blob ``name`` (a new version: its history stays); needs WRITE."""
    validate_name(name)
    with store.transaction(ctx.conn) as conn:
        return record_delete(ctx, conn, name)


def get_acl(ctx: Context, name: str) -> dict:
    stat(ctx, name)
    return acl.get(ctx.conn, resource(name))


def set_acl(ctx: Context, name: str, acl_: dict | None) -> dict:
    """Replace the blob's ACL (None: an empty one); needs WRITE."""
    new_acl = acl.normalise(acl_)
    validate_name(name)
    with store.transaction(ctx.conn) as conn:
        if not exists(ctx, name):
            raise NotFoundError(f"blob {name!r} not found")
        acl.require(ctx, resource(name), "write", "change the ACL of blob")
        acl.check_principals(conn, new_acl)
        acl.replace(conn, resource(name), new_acl)
        return acl.get(conn, resource(name))


def _readable_under(ctx: Context, path: str) -> tuple[str, list]:
    """The WHERE clause (and its arguments) of the blobs under ``path`` the caller may read."""
    prefix = ""
    if path not in ("", "/", None):
        prefix = validate_name(path.rstrip("/")) + "/"
    where = "name >= ?"
    args: list[str | int] = [prefix]
    if prefix:  # a range of the primary key: names that start with the folder's
        where += " AND name < ?"
        args.append(prefix[:-1] + "0")
    if not ctx.caller.is_admin:
        principals = ctx.caller.principals
        where += (" AND EXISTS (SELECT 1 FROM acl WHERE resource = 'blob/' || name AND"
                  f" permission = 'read' AND principal IN ({','.join('?' * len(principals))}))")
        args += principals
    return where, args


def page(ctx: Context, path: str = "", limit: int = 100, offset: int = 0) -> list[dict]:
    """One page of ``ls``, found in SQL: the blobs under ``path`` the caller may read, in
    name order from ``offset``, at most ``limit`` of them."""
    for what, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"invalid {what} {value!r}: use a whole number >= 0")
    where, args = _readable_under(ctx, path)
    rows = ctx.conn.execute(
        f"SELECT * FROM blobs WHERE {where} ORDER BY name LIMIT ? OFFSET ?", (*args, limit, offset)
    ).fetchall()
    return [dict(r) for r in rows]


def count(ctx: Context, path: str = "") -> int:
    """How many blobs under ``path`` the caller may read."""
    where, args = _readable_under(ctx, path)
    return ctx.conn.execute(f"SELECT count(*) FROM blobs WHERE {where}", args).fetchone()[0]
