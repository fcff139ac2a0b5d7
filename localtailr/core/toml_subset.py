"""The TOML of a simple PEP 723 block, read without ``tomllib``.

``tomllib`` costs a cold ``localtailr run`` ~3.5 ms to import (its regexes, ``datetime``),
for a block that is usually ``dependencies = ["a", "b"]`` and perhaps
``requires-python = ">=3.11"``. ``loads`` reads that subset: ``key = value`` lines with bare
keys, each value a string without escapes or an array of them (over several lines, with
comments and a trailing comma), blank lines and comments; it gives what ``tomllib.loads``
gives for the same text, and None for anything else (tables, dotted keys, escapes,
multi-line strings, numbers, a repeated key...), which ``tomllib`` is then left to read.
"""

from __future__ import annotations

import re

_TEXT = r"[^\x00-\x08\x0a-\x1f\x7f"  # characters TOML allows in a one-line string or comment
_STRING = rf'"{_TEXT}"\\]*"|\'{_TEXT}\']*\''
_COMMENT = rf"#{_TEXT}]*"
_GAP = rf"(?:[ \t\n]|{_COMMENT}\n)*"  # inside an array: spaces, newlines, comments
_ARRAY = rf"\[{_GAP}(?:(?:{_STRING}){_GAP},{_GAP})*(?:(?:{_STRING}){_GAP})?\]"
_LINE = re.compile(
    rf"[ \t]*(?:(?P<key>[A-Za-z0-9_-]+)[ \t]*=[ \t]*(?P<value>{_STRING}|{_ARRAY})[ \t]*)?"
    rf"(?:{_COMMENT})?(?:\n|\Z)"
)
_ITEM = re.compile(rf"(?P<string>{_STRING})|{_COMMENT}")


def loads(text: str) -> dict[str, str | list[str]] | None:
    """The table ``text`` defines, when it is of the simple subset; else None."""
    out: dict[str, str | list[str]] = {}
    pos, end = 0, len(text)
    while pos < end:
        match = _LINE.match(text, pos)
        if match is None or match.end() == pos:
            return None
        pos = match.end()
        key = match.group("key")
        if key is None:
            continue
        if key in out:
            return None  # tomllib's error to report
        value = match.group("value")
        if value[0] == "[":
            out[key] = [m.group("string")[1:-1] for m in _ITEM.finditer(value[1:-1])
                        if m.group("string")]
        else:
            out[key] = value[1:-1]
    return out
