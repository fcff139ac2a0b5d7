"""An image's ``python_version`` request: the forms accepted, and the interpreter it names."""

from __future__ import annotations

import re

ACCEPTED = "'auto', a version such as '3.12' or '3.12.1', or a specifier such as '>=3.11'"
VERSION_RE = re.compile(r"^\d+\.\d+(\.\d+)?$")


class Interpreter(tuple):
    """A real Python interpreter and its version: ``path`` (absolute, symlinks resolved:
    never a shim), ``version`` ("3.11.7"), ``requested`` (the request it answers) and
    ``warning`` (why it is not what was requested, or None). (A named tuple written out:
    a cold ``localtailr run`` would pay ~7 ms for importing dataclasses and inspect, and
    ~2 ms for typing's ``NamedTuple``.)"""

    __slots__ = ()

    def __new__(cls, path: str, version: str, requested: str = "auto",
                warning: str | None = None) -> Interpreter:
        return tuple.__new__(cls, (path, version, requested, warning))

    def __getnewargs__(self) -> tuple:
        return tuple(self)

    def __repr__(self) -> str:
        return (f"Interpreter(path={self.path!r}, version={self.version!r}, "
                f"requested={self.requested!r}, warning={self.warning!r})")

    @property
    def path(self) -> str:
        return self[0]

    @property
    def version(self) -> str:
        return self[1]

    @property
    def requested(self) -> str:
        return self[2]

    @property
    def warning(self) -> str | None:
        return self[3]


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
