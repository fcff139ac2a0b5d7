"""An image's ``python_version`` request: the forms accepted, and the interpreter it names."""

from __future__ import annotations

import re
from typing import NamedTuple

ACCEPTED = "'auto', a version such as '3.12' or '3.12.1', or a specifier such as '>=3.11'"
VERSION_RE = re.compile(r"^\d+\.\d+(\.\d+)?$")


class Interpreter(NamedTuple):
    """A real Python interpreter and its version. (A named tuple, not a dataclass: a cold
    ``localtailr run`` would pay ~7 ms for importing dataclasses and inspect.)"""

    path: str  # absolute, symlinks resolved: never a shim
    version: str  # "3.11.7"
    requested: str = "auto"
    warning: str | None = None


def parse_request(request: str):
    """(exact version, None) or (None, SpecifierSet) for a request other than ``auto``;
    ValueError naming the accepted forms for anything else."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet  # ~20 ms, rarely needed

    text = request.strip()
    if VERSION_RE.fullmatch(text):
        return text, None
    try:
        return None, SpecifierSet(text)
    except InvalidSpecifier:
        raise ValueError(f"python_version {request!r} is not valid; accepted: {ACCEPTED}") from None
