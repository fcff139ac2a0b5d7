"""The exceptions localtailr raises, beside the built-in ones the SDK uses."""

from __future__ import annotations

import builtins
import os


class LocaltailrError(Exception):
    """Base class of localtailr's own errors."""


class PermissionError(builtins.PermissionError, LocaltailrError):
    """The caller may not do this: names the user, the resource and the missing permission."""

    def __init__(self, user: str, resource: str, permission: str, action: str = ""):
        self.user, self.resource, self.permission = user, resource, permission
        what = f" ({action})" if action else ""
        super().__init__(
            f"user '{user}' lacks {permission.upper()} permission on {resource}{what}"
        )


class NotFoundError(KeyError, RuntimeError, LocaltailrError):
    """A key, secret, blob, job or run that does not exist.

    Both a KeyError (Pythonic) and a RuntimeError (what the published SDK raises).
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SecretKeyError(LocaltailrError):
    """Secrets cannot be decrypted with the key in use."""


class DiskFullError(LocaltailrError):
    """The disk holding the home is full (SQLite's "database or disk is full"); nothing was
    changed. Freeing space makes the store usable again."""


class ImageBuildError(RuntimeError):
    """Building an image failed; the message says why and where the log is (``log_path``)."""

    def __init__(self, message: str, key: str, log_path: os.PathLike):
        super().__init__(message)
        self.key = key
        self.log_path = log_path
