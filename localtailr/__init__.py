"""localtailr: a data platform that fits on a laptop.

Code written for the Datatailr Python SDK runs here unchanged but for the import::

    from localtailr import KV, User, Group, ACL, Permission

Names are imported on first use (PEP 562), so ``import localtailr`` inside a
job costs almost nothing until the job touches the platform.
"""

import os as _os

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "LocaltailrError": ".core.errors",
    "NotFoundError": ".core.errors",
    "PermissionError": ".core.errors",
    "SecretKeyError": ".core.errors",
    "ACL": ".sdk.acl",
    "Permission": ".sdk.acl",
    "Blob": ".sdk.blob",
    "Environment": ".sdk.environment",
    "Group": ".sdk.group",
    "KV": ".sdk.kv",
    "Secrets": ".sdk.kv",
    "Resources": ".core.resources",
    "User": ".sdk.user",
    "Image": ".sdk.image",
    "Schedule": ".sdk.schedule",
    "App": ".sdk.job",
    "Service": ".sdk.job",
    "ExcelAddin": ".sdk.job",
    "BatchJob": ".sdk.job",
    "task": ".sdk.workflow_run",  # importing it registers the workflow submitter
    "workflow": ".sdk.workflow_run",
    "params": ".params",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'localtailr' has no attribute {name!r}")
    # __import__, not importlib.import_module: importing importlib (and warnings with it)
    # would cost every start of a command line or a job that imports localtailr
    value = getattr(__import__(__name__ + module, fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # the public names only: not the modules this file imports for itself
    return sorted({*__all__, "__version__"})


def is_dt_installed() -> bool:
    """Whether the native Datatailr CLI is present in /opt/datatailr/bin/dt."""
    return _os.path.exists("/opt/datatailr/bin/dt")


__all__ = [*_EXPORTS, "is_dt_installed"]
