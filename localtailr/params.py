"""Run parameters: ``localtailr.params``, a dict.

``localtailr run script.py --param k=v`` passes them to the script in the environment
variable ``LOCALTAILR_PARAMS`` (a JSON object) and as ``LOCALTAILR_PARAM_K`` variables;
outside such a run the dict is empty.
"""

from __future__ import annotations

import json
import os

from .core import settings

ENV_VAR = settings.PARAMS.name


def load() -> dict:
    """The parameters of this run, read from ``LOCALTAILR_PARAMS`` (empty if unset)."""
    text = os.environ.get(ENV_VAR, "")
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


params: dict = load()
