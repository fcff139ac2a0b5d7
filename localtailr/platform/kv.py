"""``kv put|get|ls|rm|acls|set-acls|add-acls``, and the same for secrets (``--secure``).

Keys and secrets live per environment (dev, pre, prod). Each has its own ACL:
reading needs READ, writing and deleting WRITE, changing the ACL WRITE.
Secret values are Fernet-encrypted before they reach the database and never
appear in errors or listings.

A value holds at most ``MAX_VALUE_BYTES`` (64 MiB) of UTF-8: the KV is for settings and
small documents, held whole in memory on every get; larger data goes to ``Blob``
(streamed to disk), with its name kept in the KV if needed.

Every put and delete is a new version in ``kv_versions`` (for a secret only who
and when: its values are not kept).
"""

from __future__ import annotations

import itertools
import operator
import time
from collections import namedtuple

from .. import store
from ..core import names
from ..core.bulk import no_collection
from ..core.errors import NotFoundError, PermissionError
from ..store import keyring
from . import acl, provenance
from .context import Context

# What differs between plain keys and secrets: label ("key" or "secret", also its kind in
# kv_versions), table, column (the value's), prefix (of the ACL resource), secure. (A namedtuple: a dataclass would import
# inspect at every command-line call.)
Kind = namedtuple("Kind", "label table column prefix secure")


MAX_VALUE_BYTES = 64 * 2**20

KEYS = Kind("key", "kv", "value", "kv", False)
SECRETS = Kind("secret", "secrets", "token", "secret", True)


# A get's one statement: the identity generation (see context.py) and the value (NULL
# when missing). (pragma_data_version(), a table-valued function, would cost more than
# the rest of the statement, and would change at every commit of anyone.)
_GET_SQL = {
    k.table: f"SELECT g.n, t.{k.column} FROM identity_generation AS g"
    f" LEFT JOIN {k.table} AS t ON t.environment = ? AND t.key = ?"
    for k in (KEYS, SECRETS)
}


def resource(kind: Kind, environment: str, key: str) -> str:
    return f"{kind.prefix}/{environment}/{key}"


def _missing(kind: Kind, ctx: Context, key: str) -> NotFoundError:
    return NotFoundError(f"{kind.label} {key!r} not found in environment {ctx.environment}")


def put(ctx: Context, key: str, value: str, acl_: dict | None = None, kind: Kind = KEYS,
        commit_id: int | None = None) -> int:
    """Store ``value`` under ``key`` as its next version (returned). A new key gets ``acl_``,
    or its creator's full rights."""
    names.key(key, kind.label)
    if not isinstance(value, str):
        raise ValueError(f"a {kind.label}'s value must be a string, not {type(value).__name__}")
    if not value.isascii() and not names.encodable(value):  # ASCII: known without encoding
        raise ValueError(f"a {kind.label}'s value must be valid Unicode (no lone surrogates)")
    # a character is at most 4 bytes of UTF-8: only a long value needs encoding to measure
    if len(value) > MAX_VALUE_BYTES // 4 and (size := len(value.encode("utf-8"))) > MAX_VALUE_BYTES:
        raise ValueError(
            f"{kind.label} {key!r}: the value is {size / 2**20:.1f} MiB, over the limit of"
            f" {MAX_VALUE_BYTES // 2**20} MiB a value may hold; store large data with Blob"
            " (Blob().put(name, data)) and keep its name here")
    if acl_ is None and not kind.secure:
        v = _put_existing(ctx, key, value, commit_id)
        if v is not None:
            return v
    new_acl = acl.normalise(acl_) if acl_ is not None else None
    res = resource(kind, ctx.environment, key)
    with store.transaction(ctx.conn) as conn:
        # Encrypted under the write lock, which key rotation holds while it changes the
        # keys: the token is under a key that the next rotation sees and re-encrypts.
        stored = keyring.encrypt(ctx.home, value) if kind.secure else value
        version, current = conn.execute(
            f"SELECT g.n, (SELECT version FROM {kind.table}"
            " WHERE environment = ? AND key = ?) FROM identity_generation AS g",
            (ctx.environment, key),
        ).fetchone()
        exists = current is not None
        ctx.caller_at(version)
        if exists:
            acl.require(ctx, res, "write", f"put {kind.label}")
        elif kind.secure:
            acl.require_admin(ctx, f"create secret {key!r}")
        if new_acl is not None:
            acl.check_principals(conn, new_acl)
        now = time.time()
        v = current + 1 if exists else _next_version(conn, ctx, key, kind)
        conn.execute(
            f"INSERT INTO {kind.table} (environment, key, {kind.column}, updated_at, updated_by, version)"
            f" VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (environment, key) DO UPDATE SET"
            f" {kind.column} = excluded.{kind.column}, updated_at = excluded.updated_at,"
            f" updated_by = excluded.updated_by, version = excluded.version",
            (ctx.environment, key, stored, now, ctx.caller.user_id, v),
        )
        _record_version(conn, ctx, key, kind, v, None if kind.secure else value, False, now, commit_id)
        if new_acl is not None:
            acl.replace(conn, res, new_acl)
        elif not exists:
            acl.replace(conn, res, acl.owner_acl(ctx.caller.user_id))
    return v


def _put_sql(principals: int | None) -> str:
    """The update of an existing key's value to its next version, made only if the caller's
    identity is still at the generation given and (``principals`` principals, None for an
    admin) they hold WRITE; it returns the new version (no row: nothing was changed)."""
    sql = _PUT_SQL.get(principals)
    if sql is None:
        check = "" if principals is None else (
            " AND EXISTS (SELECT 1 FROM acl WHERE resource = ? AND permission = 'write' AND"
            f" principal IN ({','.join('?' * principals)}))")
        sql = _PUT_SQL[principals] = (
            "UPDATE kv SET value = ?, updated_at = ?, updated_by = ?, version = version + 1"
            " WHERE environment = ? AND key = ? AND (SELECT n FROM identity_generation) = ?"
            f"{check} RETURNING version")
    return sql


_PUT_SQL: dict[int | None, str] = {}


def _put_existing(ctx: Context, key: str, value: str, commit_id: int | None) -> int | None:
    """A put of a plain key that exists, by a caller seen before: the ACL check, the version
    and the update are one statement (with its version row, one transaction). None when it
    does not apply (a new key, a stale caller, no WRITE): put()'s general path decides."""
    cached = ctx.cached_at()
    if cached is None:
        return None
    guess, generation = cached
    conn, env = ctx.conn, ctx.environment
    now = time.time()
    args: tuple = (value, now, guess.user_id, env, key, generation)
    if guess.is_admin:
        sql = _PUT_SQL.get(None) or _put_sql(None)
    else:
        principals = guess.principals
        sql = _PUT_SQL.get(len(principals)) or _put_sql(len(principals))
        args += (f"{KEYS.prefix}/{env}/{key}", *principals)
    with store.transaction(conn):
        row = conn.execute(sql, args).fetchone()
        if row is None:
            return None  # nothing was changed
        _record_version(conn, ctx, key, KEYS, row[0], value, False, now, commit_id, guess.user_id)
    return row[0]


def _next_version(conn, ctx: Context, key: str, kind: Kind) -> int:
    return conn.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM kv_versions WHERE kind = ? AND environment = ? AND key = ?",
        (kind.label, ctx.environment, key)).fetchone()[0]


def _record_version(conn, ctx: Context, key: str, kind: Kind, version: int, value: str | None,
                    deleted: bool, now: float, commit_id: int | None, by: int | None = None) -> None:
    conn.execute(
        "INSERT INTO kv_versions (kind, environment, key, version, value, deleted, created_at,"
        " created_by, run_id, commit_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (kind.label, ctx.environment, key, version, value, int(deleted), now,
         ctx.caller.user_id if by is None else by, provenance.current_run(), commit_id))


def _get_sql(table: str, principals: int) -> str:
    """A get's statement that also checks READ for a caller with ``principals`` principals."""
    sql = _GET_READ_SQL.get((table, principals))
    if sql is None:
        marks = ",".join("?" * principals)
        sql = _GET_SQL[table].replace(
            "SELECT g.n,",
            "SELECT g.n, EXISTS (SELECT 1 FROM acl WHERE resource = ? AND"
            f" permission = 'read' AND principal IN ({marks})),", 1)
        _GET_READ_SQL[(table, principals)] = sql
    return sql


_GET_READ_SQL: dict[tuple[str, int], str] = {}


def get(ctx: Context, key: str, kind: Kind = KEYS, version: int | None = None) -> str:
    """The value under ``key`` (or its ``version``, for a plain key); NotFoundError if absent,
    PermissionError without READ."""
    if version is not None or provenance.current_run() is not None:
        return _get_recorded(ctx, key, kind, version)
    names.key(key, kind.label)
    # One statement reads the value and the identity generation (which tells whether the cached
    # caller is still current) and, for a non-admin caller seen before, whether their
    # principals may read the key: a get is then one query, as in plain sqlite3.
    cached = ctx.cached_at()  # (caller, generation) as last resolved, or None
    env = ctx.environment
    res = f"{kind.prefix}/{env}/{key}"  # resource(), inlined
    if cached is None or cached[0].is_admin:
        readable = None
        generation, value = ctx.conn.execute(_GET_SQL[kind.table], (env, key)).fetchone()
    else:
        principals = cached[0].principals
        sql = _GET_READ_SQL.get((kind.table, len(principals))) or _get_sql(kind.table, len(principals))
        generation, readable, value = ctx.conn.execute(sql, (res, *principals, env, key)).fetchone()
    if cached is not None and cached[1] == generation:
        caller = cached[0]  # nobody changed users, groups or memberships since
    else:
        caller, cached = ctx.caller_at(generation), None
    if value is None:
        raise _missing(kind, ctx, key)
    if not caller.is_admin:
        if cached is None or readable is None:  # the guess was stale: check again
            acl.require(ctx, res, "read", f"get {kind.label}")
        elif not readable:
            raise PermissionError(ctx.user, res, "read", f"get {kind.label}")
    return _decrypt(ctx, key, value) if kind.secure else value


def _decrypt(ctx: Context, key: str, value: bytes) -> str:
    try:
        return keyring.decrypt(ctx.home, value, key)
    except keyring.SecretKeyError:
        # A rotation may have re-encrypted the value and dropped its old key between the
        # read and the decryption: read both again under the write lock, which rotation
        # holds while it changes them.
        with store.transaction(ctx.conn) as conn:
            row = conn.execute(
                "SELECT token FROM secrets WHERE environment = ? AND key = ?",
                (ctx.environment, key),
            ).fetchone()
            if row is None:
                raise _missing(SECRETS, ctx, key) from None
            return keyring.decrypt(ctx.home, row[0], key)


def _get_recorded(ctx: Context, key: str, kind: Kind, version: int | None) -> str:
    # inside a run (the version read is recorded) or for an older version
    names.key(key, kind.label)
    res = resource(kind, ctx.environment, key)
    if version is None:
        row = ctx.conn.execute(f"SELECT {kind.column}, version FROM {kind.table} WHERE environment = ?"
                               " AND key = ?", (ctx.environment, key)).fetchone()
        if row is None:
            raise _missing(kind, ctx, key)
        acl.require(ctx, res, "read", f"get {kind.label}")
        provenance.record_read(ctx, res, row[1])
        return _decrypt(ctx, key, row[0]) if kind.secure else row[0]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"invalid version {version!r}: a version is a whole number from 1")
    if kind.secure:
        raise ValueError("a secret's past values are not kept: only its current value can be read")
    row = ctx.conn.execute(
        "SELECT value, deleted FROM kv_versions WHERE kind = ? AND environment = ? AND key = ? AND version = ?",
        (kind.label, ctx.environment, key, version)).fetchone()
    if row is None:
        raise NotFoundError(f"{kind.label} {key!r} has no version {version} in environment {ctx.environment}")
    acl.require(ctx, res, "read", f"get {kind.label}")
    if row["deleted"]:
        raise NotFoundError(f"{kind.label} {key!r} version {version} is a deletion: it has no value")
    provenance.record_read(ctx, res, version)
    return row["value"]


def history(ctx: Context, key: str, kind: Kind = KEYS) -> list[dict]:
    """Every version of ``key``, oldest first: version, time, who, run_id, deleted and (for a
    plain key, never a secret) value. Needs READ on the key."""
    names.key(key, kind.label)
    rows = ctx.conn.execute(
        "SELECT v.version, v.created_at AS time, u.name AS who, v.run_id, v.commit_id, v.deleted,"
        " v.value FROM kv_versions v LEFT JOIN users u ON u.user_id = v.created_by"
        " WHERE v.kind = ? AND v.environment = ? AND v.key = ? ORDER BY v.version",
        (kind.label, ctx.environment, key)).fetchall()
    if not rows:
        raise _missing(kind, ctx, key)
    res = resource(kind, ctx.environment, key)
    if _has_acl(ctx, res):
        acl.require(ctx, res, "read", f"read the history of {kind.label}")
    else:
        acl.require_admin(ctx, f"read the history of deleted {kind.label} {key!r}")
    out = []
    for r in rows:
        d = dict(r)
        d["deleted"] = bool(d["deleted"])
        if kind.secure:
            d.pop("value")
        out.append(d)
    return out


def _has_acl(ctx: Context, res: str) -> bool:
    return ctx.conn.execute("SELECT 1 FROM acl WHERE resource = ? LIMIT 1", (res,)).fetchone() is not None


def restore(ctx: Context, key: str, version: int) -> int:
    """Put the value of ``version`` back as the key's next version (plain keys); needs WRITE."""
    value = get(ctx, key, KEYS, version)
    return put(ctx, key, value)


def delete(ctx: Context, key: str, kind: Kind = KEYS, commit_id: int | None = None) -> None:
    """Remove ``key`` and its ACL; needs WRITE."""
    names.key(key, kind.label)
    res = resource(kind, ctx.environment, key)
    with store.transaction(ctx.conn) as conn:
        if not conn.execute(
            f"SELECT 1 FROM {kind.table} WHERE environment = ? AND key = ?",
            (ctx.environment, key),
        ).fetchone():
            raise _missing(kind, ctx, key)
        acl.require(ctx, res, "write", f"delete {kind.label}")
        conn.execute(
            f"DELETE FROM {kind.table} WHERE environment = ? AND key = ?", (ctx.environment, key)
        )
        _record_version(conn, ctx, key, kind, _next_version(conn, ctx, key, kind), None, True,
                        time.time(), commit_id)
        acl.remove(conn, res)


def _readable(ctx: Context, kind: Kind) -> tuple[str, list]:
    """The WHERE clause (and its arguments) of the caller's readable keys, in SQL."""
    where = "environment = ?"
    args: list[object] = [ctx.environment]
    if not ctx.caller.is_admin:
        principals = ctx.caller.principals
        where += (" AND EXISTS (SELECT 1 FROM acl WHERE resource = ? || key AND permission = 'read'"
                  f" AND principal IN ({','.join('?' * len(principals))}))")
        args += [resource(kind, ctx.environment, ""), *principals]
    return where, args


def ls(ctx: Context, kind: Kind = KEYS, limit: int | None = None, offset: int = 0) -> list[dict]:
    """The keys the caller may read, in key order, each with its ACL:
    ``[{"key": k, "acl": {...}}]``; ``limit`` and ``offset`` take one page of them."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"invalid limit {limit!r}: use a whole number >= 0")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"invalid offset {offset!r}: use a whole number >= 0")
    with no_collection():  # a listing of 100k keys builds ~10 objects a key
        return _ls(ctx, kind, limit, offset)


def _ls(ctx: Context, kind: Kind, limit: int | None, offset: int) -> list[dict]:
    where, args = _readable(ctx, kind)
    sql = f"SELECT key FROM {kind.table} WHERE {where} ORDER BY key"
    if limit is not None or offset:
        sql += " LIMIT ? OFFSET ?"
        args += [-1 if limit is None else limit, offset]
    keys = [r[0] for r in ctx.conn.execute(sql, args)]
    prefix = resource(kind, ctx.environment, "")
    if not keys:
        return []
    # the ACLs of these keys: one range scan of the ACL table's primary key, from the first
    # key to the last (with no limit, the whole environment's)
    low, high = (prefix, prefix[:-1] + "0") if limit is None else (prefix + keys[0], prefix + keys[-1] + "\0")
    rows = ctx.conn.execute(
        "SELECT resource, permission, principal FROM acl WHERE resource >= ? AND resource < ?"
        " ORDER BY resource, permission, principal", (low, high))
    # both in the same order (resource = prefix + key): one merge walk, no map of every key
    groups = itertools.groupby(rows, key=operator.itemgetter(0))
    res, group = next(groups, (None, ()))
    out = []
    for key in keys:
        want = prefix + key
        while res is not None and res < want:  # the ACL of a key the caller may not read
            res, group = next(groups, (None, ()))
        entries: dict[str, list[int]] = {}
        if res == want:
            for _, permission, principal in group:
                entries.setdefault(permission, []).append(principal)
            res, group = next(groups, (None, ()))
        out.append({"key": key, "acl": {p: entries[p] for p in acl.PERMISSIONS if p in entries}})
    return out


def count(ctx: Context, kind: Kind = KEYS) -> int:
    """How many keys of the environment the caller may read."""
    where, args = _readable(ctx, kind)
    return ctx.conn.execute(f"SELECT count(*) FROM {kind.table} WHERE {where}", args).fetchone()[0]


def acls(ctx: Context, key: str, kind: Kind = KEYS) -> dict:
    """The ACL of ``key``; needs READ."""
    res = resource(kind, ctx.environment, key)
    _require_exists(ctx, key, kind)
    acl.require(ctx, res, "read", f"read the ACL of {kind.label}")
    return acl.get(ctx.conn, res)


def set_acls(ctx: Context, key: str, acl_: dict, kind: Kind = KEYS) -> dict:
    """Replace the ACL of ``key``; needs WRITE."""
    return _change_acl(ctx, key, acl_, kind, acl.replace)


def add_acls(ctx: Context, key: str, acl_: dict, kind: Kind = KEYS) -> dict:
    """Add entries to the ACL of ``key``; needs WRITE."""
    return _change_acl(ctx, key, acl_, kind, acl.add)


def _change_acl(ctx: Context, key: str, acl_: dict, kind: Kind, how) -> dict:
    new_acl = acl.normalise(acl_)
    res = resource(kind, ctx.environment, key)
    with store.transaction(ctx.conn) as conn:
        _require_exists(ctx, key, kind)
        acl.require(ctx, res, "write", f"change the ACL of {kind.label}")
        acl.check_principals(conn, new_acl)
        how(conn, res, new_acl)
        return acl.get(conn, res)


def _require_exists(ctx: Context, key: str, kind: Kind) -> None:
    names.key(key, kind.label)
    if not ctx.conn.execute(
        f"SELECT 1 FROM {kind.table} WHERE environment = ? AND key = ?", (ctx.environment, key)
    ).fetchone():
        raise _missing(kind, ctx, key)


def rotate_key(ctx: Context) -> int:
    """Re-encrypt every secret under a new key (admins only); returns how many were re-encrypted.

    Every step that reads or changes the keys holds the database's write lock, as every
    secret put does while it encrypts: a put never writes a token under a key that a
    rotation is dropping. The old keys stay in the key file until no secret uses them,
    so a rotation killed at any point leaves every secret readable.
    """
    acl.require_admin(ctx, "rotate the secret key")
    if ctx.conn.in_transaction:
        # its two steps must commit apart: the old keys go only once the new tokens are in
        raise RuntimeError("rotate the secret key outside a transaction")
    with store.transaction(ctx.conn) as conn:
        old = keyring.keys(ctx.home)
        new = keyring.new_key()
        # 1. the new key in front: old tokens still decrypt, and new ones are under it.
        keyring.write_keys(ctx.home, [new, *old])
        multi = keyring.multi([new, *old])
        rows = conn.execute("SELECT environment, key, token FROM secrets").fetchall()
        try:
            for env, key, token in rows:
                conn.execute(
                    "UPDATE secrets SET token = ? WHERE environment = ? AND key = ?",
                    (_rotated(multi, token, env, key), env, key),
                )
        except BaseException:
            keyring.write_keys(ctx.home, old)  # nothing was encrypted under the new key
            raise
    # 2. drop the old keys, once no secret uses them (checked under the lock again).
    with store.transaction(ctx.conn) as conn:
        current = keyring.keys(ctx.home)
        if current[0] == new and len(current) > 1:
            tokens = [t for (t,) in conn.execute("SELECT token FROM secrets")]
            if keyring.all_under(new, tokens):
                keyring.write_keys(ctx.home, [new])
    return len(rows)


def _rotated(multi, token: bytes, env: str, key: str) -> bytes:
    try:
        return multi.rotate(token)
    except Exception:
        raise keyring.SecretKeyError(
            f"secret {key!r} in {env} cannot be decrypted with the current keys;"
            " nothing was rotated"
        ) from None
