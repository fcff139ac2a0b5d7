"""An image's ``python_version`` request: the forms accepted, and the interpreter it names."""

from __future__ import annotations

import re
from dataclasses import dataclass

ACCEPTED = "'auto', a version such as '3.12' or '3.12.1', or a specifier such as '>=3.11'"
VERSION_RE = re.compile(r"^\d+\.\d+(\.\d+)?$")


@dataclass(frozen=True)
class Interpreter:
    """A real Python interpreter and its version."""

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
