"""What may go into a process's environment: names and values a launch cannot choke on.

A NUL cannot be passed to a process at all (``execve`` ends a string there), and other
control characters in a run parameter or an env var are a mistake or an attack (terminal
escapes in logs). Tab, newline and carriage return stay allowed in values: a PEM key or a
multi-line note is a legitimate value.
"""

from __future__ import annotations

import re

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def is_name(name: object) -> bool:
    """Whether ``name`` is a valid variable name (letters, digits and '_', not starting
    with a digit; the whole string, no trailing newline)."""
    return isinstance(name, str) and NAME.fullmatch(name) is not None


def check_value(what: str, value: str) -> str:
    """``value`` if it can be put in an environment; else ValueError naming ``what``."""
    found = _CONTROL.search(value)
    if found is None:
        return value
    char = found.group()
    if char == "\x00":
        raise ValueError(f"invalid {what}: it contains a NUL character")
    raise ValueError(f"invalid {what}: it contains the control character {char!r} "
                     "(only tab, newline and carriage return are accepted)")
