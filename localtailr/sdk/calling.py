"""How the Python face finds its caller: the signed-in user, the home and the environment."""

from __future__ import annotations

from ..platform.context import Context
from ..platform.context import context as _make_context


def caller(environment: object = None, lazy: bool = False) -> Context:
    """The context for a call made now: ``LOCALTAILR_HOME``, ``LOCALTAILR_USER`` and
    ``DATATAILR_JOB_ENVIRONMENT`` are read at each call, so a test or a job can change them."""
    return _make_context(environment=environment, lazy=lazy)
