"""Run parameters given on a command line: ``--param KEY=VALUE``, and the variables that
carry them into the run (``localtailr.params`` reads them there)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from . import settings

PARAM_PREFIX = settings.PARAM_PREFIX


def parse_params(items: Iterable[str]) -> dict[str, str]:
    """``["k=v", ...]`` (from ``--param k=v``) as a dict. Raises ValueError on a bad item."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"parameter {item!r} is not valid; accepted: KEY=VALUE")
        out[key.strip()] = value
    return out


def param_env_name(key: str) -> str:
    """The variable a parameter is exposed as: ``LOCALTAILR_PARAM_`` + KEY upper-cased,
    other characters than letters and digits replaced by ``_``."""
    return PARAM_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", key).upper()
