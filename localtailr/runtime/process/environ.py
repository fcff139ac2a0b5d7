"""The environment a run's process starts with."""

from __future__ import annotations

import json
import os

from ...core.home import USER_UMASK_VAR, Home
from ...platform.jobs import job_environment_vars
from .run_info import RunInfo


def base_environ() -> dict[str, str]:
    """The daemon's environment without the variables of localtailr, the platform, pytest."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("DATATAILR_", "LOCALTAILR_", "PYTEST_"))}


def job_environ(home: Home, info: RunInfo, image, port: int | None) -> dict[str, str]:
    """The process's environment: the image's, the job's env_vars, then the platform's
    contract (``DATATAILR_*``, ``PORT``, ``LOCALTAILR_*``)."""
    env = image.environ(base_environ())
    definition = {**info.definition, "name": info.job_name, "type": info.job_type,
                  "environment": info.environment, "run_as": info.run_as}
    run = {"run_id": info.run_id, "version": info.version, "params": info.params, "port": port}
    env.update(job_environment_vars(definition, run, home))
    env["LOCALTAILR_PARAMS"] = json.dumps(info.params)
    env["PYTHONUNBUFFERED"] = "1"
    if port is not None:
        env["PORT"] = env["DATATAILR_SERVICE_PORT"] = str(port)
    for var in ("LOCALTAILR_WHEELHOUSE", "LOCALTAILR_OFFLINE", USER_UMASK_VAR):
        if var in os.environ:
            env[var] = os.environ[var]
    return env
