"""Validation of the names users give things."""

from __future__ import annotations

import re

_PRINCIPAL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")
_KEY = re.compile("^[^\x00-\x1f\x7f\ud800-\udfff]{1,512}$")  # no control chars, no lone surrogates


# The range of an integer SQLite stores: ids, versions and counts outside it are refused
# here, with their name, instead of failing deep down with OverflowError.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def whole_number(value: object, what: str, minimum: int = 0) -> int:
    """``value`` if it is an int (not a bool) from ``minimum`` to 2**63-1; ValueError naming
    ``what`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"invalid {what} {value!r}: use a whole number, not {type(value).__name__}")
    if not minimum <= value <= INT_MAX:
        raise ValueError(f"invalid {what} {value}: use a whole number from {minimum} to {INT_MAX}")
    return value


def text(value: object, what: str, optional: bool = True) -> str | None:
    """``value`` if it is a string (or None when ``optional``); ValueError naming ``what``."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__} ({value!r})")
    return value


def principal(name: object, kind: str) -> str:
    """A valid user or group name: 1-64 of letters, digits, ``_ . @ -``, not starting with a mark."""
    if not isinstance(name, str) or not _PRINCIPAL.fullmatch(name):
        raise ValueError(
            f"invalid {kind} name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-',"
            " starting with a letter, digit or '_'"
        )
    return name


def encodable(text: str) -> bool:
    """Whether ``text`` can be stored (UTF-8): false for lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Keys already found valid (a set lookup costs a third of the regular expression's match,
# and a program reads the same few keys again and again); emptied when full.
_VALID_KEYS: set[str] = set()
MAX_VALID_KEYS = 4096


def key(name: object, kind: str = "key") -> str:
    """A valid KV key or secret name: 1-512 characters, no control characters, valid Unicode."""
    if type(name) is str and name in _VALID_KEYS:
        return name
    if not isinstance(name, str) or not _KEY.fullmatch(name):
        raise ValueError(
            f"invalid {kind} {name!r}: a {kind} is a non-empty string of at most 512"
            " characters with no control characters"
        )
    if type(name) is str:  # not a subclass, whose == or hash could say anything
        if len(_VALID_KEYS) >= MAX_VALID_KEYS:
            _VALID_KEYS.clear()
        _VALID_KEYS.add(name)
    return name
