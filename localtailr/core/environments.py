"""The platform's environments: dev, pre and prod, in promotion order."""

import os

ENV_VAR = "DATATAILR_JOB_ENVIRONMENT"
ENVIRONMENTS = ("dev", "pre", "prod")


def normalise(environment: object = None) -> str:
    """The environment name for ``environment`` (an Environment, a name, or None for the current).

    None means ``DATATAILR_JOB_ENVIRONMENT`` read at call time, default ``dev``.
    """
    if environment is None:
        environment = os.environ.get(ENV_VAR) or "dev"
    value = getattr(environment, "value", environment)
    if not isinstance(value, str) or value.lower() not in ENVIRONMENTS:
        source = f" (from {ENV_VAR})" if environment == os.environ.get(ENV_VAR) else ""
        raise ValueError(
            f"unknown environment {value!r}{source}: expected one of {', '.join(ENVIRONMENTS)}"
        )
    return value.lower()


def next_environment(environment: str) -> str:
    """The environment a job in ``environment`` is promoted to."""
    index = ENVIRONMENTS.index(normalise(environment))
    if index == len(ENVIRONMENTS) - 1:
        raise ValueError(f"cannot promote beyond {ENVIRONMENTS[-1]}")
    return ENVIRONMENTS[index + 1]
