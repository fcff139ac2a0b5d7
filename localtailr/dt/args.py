"""``dt`` argument lists as the genuine SDK sends them: positionals, ``--flag``, ``--name value``.

Quirk of the SDK (``wrapper.add_quotes``): a positional argument holding a space or a quote
arrives wrapped in one pair of literal ``"``; that pair is removed here. ``--json`` and
``--pretty`` are accepted everywhere they are in the platform's command set.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field


class UsageError(ValueError):
    """The argument list does not fit the command; the message says what was wrong."""


@dataclass(frozen=True)
class Spec:
    """One sub-command: its positional names (``min``..``max`` of them), flags and valued options."""

    positionals: tuple[str, ...] = ()
    min: int | None = None
    max: int | None = None
    flags: frozenset[str] = field(default_factory=frozenset)
    values: frozenset[str] = field(default_factory=frozenset)


def spec(positionals: str = "", flags: str = "", values: str = "", min: int | None = None,
         max: int | None = None) -> Spec:
    """A Spec from space-separated names; a trailing ``...`` on positionals means "or more"."""
    names = tuple(positionals.split())
    many = bool(names) and names[-1] == "..."
    names = tuple(n for n in names if n != "...")
    return Spec(names, len(names) if min is None else min,
                (10**6 if many else len(names)) if max is None else max,
                frozenset(flags.split()), frozenset(values.split()))


@dataclass
class Args:
    """Parsed arguments: ``positionals`` (list), ``options`` (name -> value, flags -> True)."""

    positionals: list[str]
    options: dict[str, str | bool]
    stdin: object = None  # a binary file, or None for this process's stdin

    def opt(self, name: str, default=None):
        return self.options.get(name, default)

    def flag(self, name: str) -> bool:
        return bool(self.options.get(name))

    def input(self):
        """What the call reads (``blob put``): the given stream, else stdin."""
        return self.stdin if self.stdin is not None else sys.stdin.buffer


def unquote(text: str) -> str:
    """Undo the SDK's quoting of a positional: ``"a b"`` -> ``a b`` (only what it would quote)."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        if " " in inner or '"' in inner or "'" in inner:
            return inner
    return text


def parse(argv: list[str], sp: Spec, where: str) -> Args:
    """Parse ``argv`` (after ``dt <cmd> <sub>``) against ``sp``; UsageError names the problem."""
    positionals: list[str] = []
    options: dict[str, str | bool] = {}
    i = 0
    while i < len(argv):
        item = argv[i]
        if item.startswith("--") and len(item) > 2:
            name, eq, inline = item[2:].partition("=")
            if name in sp.flags and not eq:
                options[name] = True
            elif name in sp.values:
                if eq:
                    options[name] = inline
                elif i + 1 < len(argv):
                    i += 1
                    options[name] = argv[i]
                else:
                    raise UsageError(f"{where}: option --{name} needs a value")
            else:
                known = sorted(sp.flags | sp.values)
                hint = f"; it accepts {', '.join('--' + k for k in known)}" if known else \
                    "; it takes no options"
                raise UsageError(f"{where}: unknown option --{name}{hint}")
        else:
            positionals.append(unquote(item))
        i += 1
    low = sp.min or 0
    high = sp.max if sp.max is not None else len(sp.positionals)
    if not low <= len(positionals) <= high:
        names = " ".join(f"<{n}>" for n in sp.positionals) or "no arguments"
        raise UsageError(f"{where}: expects {names}, got {len(positionals)} argument(s)")
    return Args(positionals, options)
