"""``KV`` and ``Secrets``: per-environment key-value stores with per-key ACLs."""

from __future__ import annotations

from ..core.bulk import no_collection
from ..platform import kv as _kv
from ..platform.context import context as _context
from .acl import ACL, Permission, acl_dict
from .calling import caller


def _acl_arg(acls: object, permission: object = None) -> dict:
    """An ACL given as an ACL, its dict form, or the reference's (entity, permission) pair."""
    if permission is not None:
        return ACL({permission: [acls]}).to_dict()
    result = acl_dict(acls)
    if result is None:
        raise ValueError("an ACL is required")
    return result


class _Store:
    _kind = _kv.KEYS

    def __init__(self, environment: object = None):
        # None: DATATAILR_JOB_ENVIRONMENT, read at each call.
        self._environment = environment

    def _ctx(self):
        return caller(self._environment)

    def _lazy_ctx(self):
        # for operations that check the caller in their own query (get, put)
        return _context(environment=self._environment, lazy=True)

    def get(self, key: str) -> str:
        """The value stored under ``key`` in the current environment.

        Raises an error that is both KeyError and RuntimeError when the key is missing,
        and PermissionError without READ.
        """
        return _kv.get(self._lazy_ctx(), key, self._kind)

    def history(self, key: str) -> list[dict]:
        """Every version of ``key``, oldest first: version, time, who, run_id, commit_id,
        deleted (and, for a plain key, its value)."""
        return _kv.history(self._ctx(), key, self._kind)

    def ls(self) -> list[dict]:
        """The keys of the current environment the caller may read, with their ACLs:
        ``[{"key": "db_url", "acl": ACL}, ...]``."""
        with no_collection():  # ~10 objects a key: see core.bulk
            entries = _kv.ls(self._ctx(), self._kind)
            acls = ACL.many_from_dicts([e["acl"] for e in entries])
            return [{"key": e["key"], "acl": a} for e, a in zip(entries, acls)]

    def acls(self, key: str) -> ACL:
        """The ACL of ``key``."""
        return ACL.from_dict(_kv.acls(self._ctx(), key, self._kind))

    def add_acl(self, key: str, acls: object, permission: object = None) -> None:
        """Add entries to the ACL of ``key`` (an ACL, or an entity and a permission)."""
        _kv.add_acls(self._ctx(), key, _acl_arg(acls, permission), self._kind)

    def set_acls(self, key: str, acls: object, permission: object = None) -> None:
        """Replace the ACL of ``key``."""
        _kv.set_acls(self._ctx(), key, _acl_arg(acls, permission), self._kind)

    def delete(self, key: str) -> None:
        """Delete ``key`` (needs WRITE)."""
        _kv.delete(self._ctx(), key, self._kind)


class KV(_Store):
    """A key-value store, separate for each environment (dev/pre/prod), with per-key ACLs.

    Example::

        from localtailr import KV
        kv = KV()
        kv.put("db_url", "postgresql://user:password@host:port/dbname")
        kv.get("db_url")
    """

    def put(self, key: str, value: str, acl: ACL | None = None) -> None:
        """Store ``value`` under ``key``. A new key without ``acl`` gives its creator every permission.

        A value holds at most 64 MiB; store larger data with ``Blob``."""
        _kv.put(self._lazy_ctx(), key, value, acl_dict(acl), self._kind)

    def get(self, key: str, version: int | None = None) -> str:
        """The value stored under ``key`` (or its ``version``) in the current environment.

        Raises an error that is both KeyError and RuntimeError when the key is missing,
        and PermissionError without READ.
        """
        return _kv.get(self._lazy_ctx(), key, self._kind, version)

    def restore(self, key: str, version: int) -> None:
        """Put the value of ``version`` back under ``key`` (as a new version); needs WRITE."""
        _kv.restore(self._ctx(), key, version)

    def __repr__(self) -> str:
        return f"KV(environment={self._environment or 'current'})"


class Secrets(_Store):
    """Secrets (passwords, API keys, tokens) scoped to the current environment.

    Values are encrypted at rest and never shown in reprs, listings or errors.
    ``put`` and ``delete`` are localtailr's, beside the SDK's ``get`` and ``ls``.
    """

    _kind = _kv.SECRETS

    def put(self, key: str, value: str, acl: ACL | None = None) -> None:
        """Store a secret: creating one needs an admin, replacing one WRITE (at most 64 MiB)."""
        _kv.put(self._lazy_ctx(), key, value, acl_dict(acl), self._kind)

    def __repr__(self) -> str:
        return f"Secrets(environment={self._environment or 'current'})"


__all__ = ["KV", "Permission", "Secrets"]
