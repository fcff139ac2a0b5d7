"""Whether this process is a job importing its own code: there, deploying does nothing.

A README-style script deploys at its top level (``Service(...).run()``, ``nightly()``)
with no ``if __name__ == "__main__":`` guard. A job's process imports that script to find
its entrypoint, so the call runs again there; deploying again would start a new version,
whose process imports the script and deploys again, for ever. As on the platform, such a
call made while a job's process imports its code deploys nothing and returns what
exists (the job, its latest run).

The job's bootstrap (``runtime/process/bootstrap.py``, which does not import this package) and a
task's loader set the variables below for the time of the import. The platform's own
``DATATAILR_BATCH_DONT_RUN_WORKFLOW=true`` stops workflow calls only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from . import settings

IMPORTING = settings.IMPORTING_JOB_CODE.name
DONT_RUN_WORKFLOW = "DATATAILR_BATCH_DONT_RUN_WORKFLOW"


def importing() -> bool:
    """Whether a job's process is importing its own code (no job may be deployed)."""
    return os.environ.get(IMPORTING) == "1"


def workflows_held() -> bool:
    """Whether a workflow call must not deploy (while importing, or the platform's switch)."""
    return importing() or os.environ.get(DONT_RUN_WORKFLOW) == "true"


@contextmanager
def importing_job_code() -> Iterator[None]:
    """Within: this process is importing its job's code."""
    saved = {name: os.environ.get(name) for name in (IMPORTING, DONT_RUN_WORKFLOW)}
    os.environ[IMPORTING] = "1"
    os.environ[DONT_RUN_WORKFLOW] = "true"
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
