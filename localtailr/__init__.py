"""localtailr: a data platform that fits on a laptop.

Code written for the Datatailr Python SDK runs here unchanged but for the import::

    from localtailr import KV, User, Group, ACL, Permission
"""

from .errors import LocaltailrError, NotFoundError, PermissionError, SecretKeyError
from .sdk.acl import ACL, Permission
from .sdk.blob import Blob
from .sdk.environment import Environment
from .sdk.group import Group
from .sdk.kv import KV, Secrets
from .sdk.resources import Resources
from .sdk.user import User

__version__ = "0.1.0"


def is_dt_installed() -> bool:
    """Whether the native Datatailr CLI is present in /opt/datatailr/bin/dt."""
    import os

    return os.path.exists("/opt/datatailr/bin/dt")


__all__ = [
    "ACL",
    "KV",
    "Blob",
    "Environment",
    "Group",
    "LocaltailrError",
    "NotFoundError",
    "Permission",
    "PermissionError",
    "Resources",
    "SecretKeyError",
    "Secrets",
    "User",
    "is_dt_installed",
]
