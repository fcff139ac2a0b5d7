"""The ``--filter`` expressions of ``dt ... ls`` and ``dt job runs``.

Grammar (what the SDK sends, and a little more)::

    expr  := term (("and" | "or") term)*        "and" binds tighter than "or"
    term  := "(" expr ")" | field op value
    op    := "=" | "!=" | ">=" | "<=" | ">" | "<"
    value := "[" item ("," item)* "]" | item      a list means "one of" (with "=")

An empty filter matches everything. ``compile(text, fields)`` returns a predicate over a
dict; a field outside ``fields`` or text that does not parse is a ValueError naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_TOKEN = re.compile(r"\s*(\(|\)|\[|\]|,|!=|>=|<=|=|>|<|[^\s()\[\],=<>!]+)")
Predicate = Callable[[dict], bool]


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"cannot parse filter {text!r} at {text[pos:]!r}")
        out.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _scalar(token: str):
    token = token.strip("'\"")
    try:
        return int(token)
    except ValueError:
        try:
            return float(token)
        except ValueError:
            return token


def _compare(left, op: str, right) -> bool:
    if isinstance(right, list):
        inside = any(_compare(left, "=", r) for r in right)
        return inside if op == "=" else not inside if op == "!=" else False
    if left is None:
        return op == "!="
    if isinstance(right, (int, float)) and not isinstance(left, (int, float)):
        try:
            left = float(left)
        except (TypeError, ValueError):
            return op == "!="
    if isinstance(left, (int, float)) and isinstance(right, str):
        left = str(left)
    ops = {"=": left == right, "!=": left != right}
    if op in ops:
        return ops[op]
    try:
        return {">=": left >= right, "<=": left <= right, ">": left > right, "<": left < right}[op]
    except TypeError:
        return False


def compile(text: str | None, fields: Iterable[str]) -> Predicate:  # noqa: A001, C901 - the filter's verb; one branch an operator
    """A predicate for ``text`` over dicts with keys ``fields``."""
    allowed = set(fields)
    tokens = _tokens(text or "")
    if not tokens:
        return lambda row: True
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(expected: str | None = None) -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError(f"cannot parse filter {text!r}: it ends too early")
        token = tokens[pos]
        if expected is not None and token != expected:
            raise ValueError(f"cannot parse filter {text!r}: expected {expected!r}, found {token!r}")
        pos += 1
        return token

    def term() -> Predicate:
        if peek() == "(":
            take("(")
            inner = expr()
            take(")")
            return inner
        name = take()
        if name not in allowed:
            raise ValueError(f"cannot filter on {name!r}: use {', '.join(sorted(allowed))}")
        op = take()
        if op not in ("=", "!=", ">=", "<=", ">", "<"):
            raise ValueError(f"cannot parse filter {text!r}: {op!r} is not a comparison")
        if peek() == "[":
            take("[")
            values = [_scalar(take())]
            while peek() == ",":
                take(",")
                values.append(_scalar(take()))
            take("]")
            value = values
        else:
            value = _scalar(take())
        return lambda row: _compare(row.get(name), op, value)

    def conj() -> Predicate:
        parts = [term()]
        while (peek() or "").lower() == "and":
            take()
            parts.append(term())
        return lambda row: all(p(row) for p in parts)

    def expr() -> Predicate:
        parts = [conj()]
        while (peek() or "").lower() == "or":
            take()
            parts.append(conj())
        return lambda row: any(p(row) for p in parts)

    predicate = expr()
    if pos != len(tokens):
        raise ValueError(f"cannot parse filter {text!r}: unexpected {tokens[pos]!r}")
    return predicate
