"""Build scripts: the Dockerfile lines of ``build_script_pre`` / ``build_script_post``.

Locally an image is a virtualenv, so two instructions make sense: ``RUN`` (a shell
command run in order while the environment is built, in its folder, with its ``bin`` first
on ``PATH``) and ``ENV`` (a variable set for the job). ``ENV K=V [K2=V2 ...]`` and the
older ``ENV K V`` are both accepted, as are the shell and exec (JSON list) forms of RUN and
line continuations with ``\\``. Comments and blank lines are ignored; any other
instruction is refused with a ValueError naming the line.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

ACCEPTED = "RUN <command> and ENV <KEY>=<value> (or ENV <KEY> <value>) lines"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VAR_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class Instruction(tuple):
    """One RUN or ENV instruction and the line it starts on: ``kind`` ("RUN" or "ENV"),
    ``line``, ``command`` (RUN: the shell command) and ``env`` (ENV: the (name, value)
    pairs, values unexpanded). (A named tuple written out, not ``typing.NamedTuple``: a
    cold ``localtailr run`` would pay ~2 ms for importing typing; see ``python_request``.)"""

    __slots__ = ()

    def __new__(cls, kind: str, line: int, command: str = "",
                env: tuple[tuple[str, str], ...] = ()) -> Instruction:
        return tuple.__new__(cls, (kind, line, command, env))

    def __getnewargs__(self) -> tuple:
        return tuple(self)

    def __repr__(self) -> str:
        return (f"Instruction(kind={self.kind!r}, line={self.line!r}, "
                f"command={self.command!r}, env={self.env!r})")

    @property
    def kind(self) -> str:
        return self[0]

    @property
    def line(self) -> int:
        return self[1]

    @property
    def command(self) -> str:
        return self[2]

    @property
    def env(self) -> tuple[tuple[str, str], ...]:
        return self[3]


class BuildScript(tuple):
    """A parsed build script: its ``instructions``. (A named tuple written out, as
    ``Instruction``.)"""

    __slots__ = ()

    def __new__(cls, instructions: tuple[Instruction, ...] = ()) -> BuildScript:
        return tuple.__new__(cls, (instructions,))

    def __getnewargs__(self) -> tuple:
        return tuple(self)

    def __repr__(self) -> str:
        return f"BuildScript(instructions={self.instructions!r})"

    @property
    def instructions(self) -> tuple[Instruction, ...]:
        return self[0]

    def __bool__(self) -> bool:
        return bool(self.instructions)

    @property
    def run_commands(self) -> list[str]:
        return [i.command for i in self.instructions if i.kind == "RUN"]

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables set by ENV lines, in order; ``$VAR``/``${VAR}`` in a value refer to
        earlier ENV lines, then to ``base`` (left as written when neither defines them)."""
        out: dict[str, str] = {}
        for ins in self.instructions:
            for name, value in ins.env:
                out[name] = expand(value, {**(base or {}), **out})
        return out

    def canonical(self) -> str:
        """A stable text of the script, for hashing (comments and layout do not count)."""
        return json.dumps([[i.kind, i.command, [list(p) for p in i.env]] for i in self.instructions])


def expand(value: str, variables: Mapping[str, str]) -> str:
    """Replace ``$NAME``/``${NAME}`` by their values; unknown names are left as written."""

    def sub(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return variables.get(name, match.group(0))

    return _VAR_REF.sub(sub, value)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # comment lines inside a continuation are dropped, as Docker does
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf += stripped[:-1].rstrip() + " "
            continue
        out.append((start, buf + stripped))
        buf = ""
    if buf.strip():
        out.append((start, buf.strip()))
    return out


def _parse_env(number: int, line: str, rest: str) -> tuple[tuple[str, str], ...]:
    rest = rest.strip()
    if not rest:
        raise ValueError(f"build script line {number}: {line!r}: ENV needs a name and a value")
    first = rest.split(None, 1)[0]
    if "=" not in first:  # legacy form: ENV NAME value with spaces
        parts = rest.split(None, 1)
        pairs = [(parts[0], parts[1] if len(parts) > 1 else "")]
        if len(parts) < 2:
            raise ValueError(f"build script line {number}: {line!r}: ENV {parts[0]} needs a value")
    else:
        try:
            tokens = shlex.split(rest, posix=True)
        except ValueError as exc:
            raise ValueError(f"build script line {number}: {line!r}: {exc}") from None
        pairs = []
        for token in tokens:
            if "=" not in token:
                raise ValueError(
                    f"build script line {number}: {line!r}: {token!r} is not NAME=value"
                )
            name, value = token.split("=", 1)
            pairs.append((name, value))
    for name, _ in pairs:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(
                f"build script line {number}: {line!r}: {name!r} is not a variable name "
                "(letters, digits and '_', not starting with a digit)"
            )
    return tuple(pairs)


def _parse_run(number: int, line: str, rest: str) -> str:
    rest = rest.strip()
    if not rest:
        raise ValueError(f"build script line {number}: {line!r}: RUN needs a command")
    if rest.startswith("["):
        try:
            argv = json.loads(rest)
        except json.JSONDecodeError:
            argv = None
        if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            raise ValueError(
                f"build script line {number}: {line!r}: the exec form of RUN must be a JSON "
                'list of strings, e.g. RUN ["echo", "hi"]'
            )
        return shlex.join(argv)
    return rest


def parse_text(text: str) -> BuildScript:
    """Parse build script text."""
    instructions = []
    for number, line in _logical_lines(text):
        parts = line.split(None, 1)
        word, rest = parts[0], parts[1] if len(parts) > 1 else ""
        kind = word.upper()
        if kind == "RUN":
            instructions.append(Instruction("RUN", number, command=_parse_run(number, line, rest)))
        elif kind == "ENV":
            instructions.append(Instruction("ENV", number, env=_parse_env(number, line, rest)))
        else:
            raise ValueError(
                f"build script line {number}: {line!r}: {word} is not supported locally; "
                f"accepted: {ACCEPTED}, comments and blank lines"
            )
    return BuildScript(tuple(instructions))


def parse_build_script(
    value: str | os.PathLike | None, base_dir: Path | None = None
) -> BuildScript:
    """Parse ``build_script_pre``/``build_script_post``: Dockerfile text or a path to a file.

    Raises:
        ValueError: naming the line number and text of an unsupported or malformed line.
        TypeError: if ``value`` is neither text nor a path.
    """
    if value is None:
        return BuildScript()
    if isinstance(value, os.PathLike):
        return parse_file(Path(value) if base_dir is None else base_dir / value)
    if not isinstance(value, str):
        raise TypeError(
            f"build script {value!r} is a {type(value).__name__}; accepted: Dockerfile text or "
            "a path to a file"
        )
    text = value.strip()
    if not text:
        return BuildScript()
    if "\n" not in text:
        candidate = Path(text).expanduser()
        if not candidate.is_absolute() and base_dir is not None:
            candidate = base_dir / candidate
        if candidate.is_file():
            return parse_file(candidate)
        if text.split(" ", 1)[0].upper() not in ("RUN", "ENV") and (
            os.sep in text or "." in text
        ) and " " not in text:
            raise ValueError(f"build script file {str(candidate)!r} not found")
    return parse_text(value)


def parse_file(path: Path) -> BuildScript:
    if not path.is_file():
        raise ValueError(f"build script file {str(path)!r} not found")
    try:
        return parse_text(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
