"""Python requirements in every form users write them.

Accepted forms of ``python_requirements``:

- ``""`` or ``None``: nothing to install;
- a string of specifiers, comma-separated (``"arrow~=1.3, polars~=0.20"``) or one a line
  (requirements.txt or ``pip freeze`` text; ``#`` comments, ``-r other.txt`` and
  ``--hash`` options are understood);
- a list of specifiers, one an item;
- a path to a requirements file (``requirements.txt``) or to a ``pyproject.toml`` (its
  ``[project].dependencies``);
- ``"auto"``: the caller's project (the nearest ``pyproject.toml`` from the working
  folder up), else the calling environment itself (nothing to install: the job's
  environment falls back on the caller's packages).

In a script, a DataMaker-style header (``# requirements: arrow~=1.3``), a ``# secrets:
NAME1, NAME2`` header and a PEP 723 ``# /// script`` block.

Every entry is a PEP 508 requirement (any PEP 440 version specifier); a malformed one
raises ``ValueError`` naming it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

AUTO = "auto"

ACCEPTED = (
    "a PEP 508 requirement such as 'six', 'six==1.16.0', 'arrow~=1.3', 'numpy>=1.26,<3', "
    "'requests[socks]>=2', or 'name @ https://...'"
)

_FILE_SUFFIXES = (".txt", ".in", ".toml")
_HEADER_RE = re.compile(r"^#\s*(requirements|secrets)\s*:(.*)$", re.IGNORECASE)
_PEP723_RE = re.compile(
    r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$"
)
_SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$")


# The common forms, ``name`` and ``name>=1.2,<2`` (plain release versions, no extras, URL
# or marker), read without packaging, whose import (~20 ms, mostly compiling its regular
# expressions) would be most of a cold ``localtailr run``'s own time. Anything else goes
# to packaging. (~= needs two release parts, as packaging's grammar has it.)
_SIMPLE_SPEC = r"(?:(?:==|!=|<=|>=|<|>)\s*[0-9]+(?:\.[0-9]+)*|~=\s*[0-9]+(?:\.[0-9]+)+)"
_SIMPLE_RE = re.compile(
    r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*"
    rf"(?P<specs>{_SIMPLE_SPEC}(?:\s*,\s*{_SIMPLE_SPEC})*)?"
)
_SPEC_RE = re.compile(r"\s*(~=|==|!=|<=|>=|<|>)\s*([0-9.]+)\s*")


def _simple(text: str) -> str | None:
    """``normalise``'s form of a simple requirement, as packaging gives it; None when
    ``text`` is not one (or when packaging might read it otherwise: one operator twice)."""
    match = _SIMPLE_RE.fullmatch(text)
    if match is None:
        return None
    name = re.sub(r"[-_.]+", "-", match.group("name")).lower()
    specs = [m.group(1) + m.group(2) for m in map(_SPEC_RE.fullmatch,
                                                  (match.group("specs") or "").split(","))
             if m is not None]
    if len({s[:2] if s[1] == "=" else s[0] for s in specs}) != len(specs):
        return None  # packaging drops equal clauses (>=1 and >=1.0): leave that to it
    return name + ",".join(sorted(specs))


def validate(entry: str) -> str:
    """Check one requirement; return it stripped. Raises ValueError naming it if malformed."""
    if not isinstance(entry, str):
        raise TypeError(f"requirement {entry!r} is a {type(entry).__name__}; expected {ACCEPTED}")
    text = entry.strip()
    if not text:
        raise ValueError(f"empty requirement; expected {ACCEPTED}")
    if _SIMPLE_RE.fullmatch(text):
        return text
    # packaging (~20 ms): a cached script run never needs it, nor a simple requirement
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        Requirement(text)
    except InvalidRequirement as exc:
        detail = str(exc).splitlines()[0]
        raise ValueError(f"invalid requirement {text!r} ({detail}); expected {ACCEPTED}") from None
    return text


def normalise(entries: Iterable[str]) -> list[str]:
    """Canonical, sorted, de-duplicated form of validated requirements (for hashing)."""
    out = set()
    for entry in entries:
        text = validate(entry)
        out.add(_simple(text) or _canonical(text))
    return sorted(out)


def _canonical(text: str) -> str:
    """``normalise``'s form of one valid requirement, by packaging."""
    # packaging (~20 ms): only for a requirement that is not a simple one
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    req = Requirement(text)
    out: str = canonicalize_name(req.name)
    if req.extras:
        out += "[" + ",".join(sorted(canonicalize_name(e) for e in req.extras)) + "]"
    if req.url:
        out += " @ " + req.url
    specs = sorted(str(s) for s in req.specifier)
    if specs:
        out += ",".join(specs)
    if req.marker is not None:
        out += " ; " + str(req.marker)
    return out


def split_specifiers(text: str) -> list[str]:
    """Split comma-separated specifiers, keeping the commas inside one (``numpy>=1,<2``),
    inside extras (``pkg[a,b]``) and inside quoted marker values."""
    pieces: list[str] = []
    buf, depth, quote = "", 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            pieces.append(buf)
            buf = ""
            continue
        buf += ch
    pieces.append(buf)
    out: list[str] = []
    for piece in pieces:
        stripped = piece.strip()
        if out and stripped[:1] in ("<", ">", "=", "!", "~"):
            out[-1] += "," + stripped  # a further clause of the previous specifier
        elif stripped:
            out.append(stripped)
    return out


def _strip_comment(line: str) -> str:
    if line.lstrip().startswith("#"):
        return ""
    match = re.search(r"\s#", line)
    return line[: match.start()] if match else line


def parse_text(text: str, base_dir: Path | None = None, _seen: tuple[Path, ...] = ()) -> list[str]:
    """Requirements from text: comma-separated, one a line, or requirements.txt syntax."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = _strip_comment(raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    if pending:
        lines.append(pending)
    out: list[str] = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line.startswith("-"):
            out.extend(_option_line(line, base_dir, _seen))
            continue
        line = re.sub(r"\s--hash[=\s]\S+", "", line)  # pip-compile --generate-hashes output
        if "@" in line and "," not in line.split("@", 1)[0]:
            out.append(validate(line))  # name @ url: the url may hold commas
        else:
            out.extend(validate(piece) for piece in split_specifiers(line))
    return out


def _option_line(line: str, base_dir: Path | None, seen: tuple[Path, ...]) -> list[str]:
    match = re.fullmatch(r"^(-r|--requirement)(?:\s+|=)(\S+)$", line)
    if match:
        return parse_file(_resolve(match.group(2), base_dir), _seen=seen)
    raise ValueError(
        f"requirement line {line!r} is a pip option; accepted: specifiers and "
        "'-r other-requirements.txt' (editable installs and index options are not supported)"
    )


def _resolve(path: str | os.PathLike, base_dir: Path | None) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    return p


def parse_file(path: Path, _seen: tuple[Path, ...] = ()) -> list[str]:
    """Requirements from a requirements.txt or a pyproject.toml."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"requirements file {str(path)!r} not found")
    real = path.resolve()
    if real in _seen:
        raise ValueError(f"requirements file {str(path)!r} includes itself")
    if path.name.endswith(".toml"):
        return pyproject_dependencies(path)
    text = path.read_text(encoding="utf-8")
    return parse_text(text, base_dir=path.parent, _seen=_seen + (real,))


def pyproject_dependencies(path: Path) -> list[str]:
    """``[project].dependencies`` of a pyproject.toml, validated."""
    import tomllib  # only for a pyproject: a cached script run never reads one

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not valid TOML: {exc}") from None
    deps = data.get("project", {}).get("dependencies", [])
    if not isinstance(deps, list):
        raise ValueError(  # noqa: TRY004 (malformed file content)
            f"{str(path)!r}: [project].dependencies must be a list of strings"
        )
    return [validate(d) for d in deps]


def find_project(start: Path | None = None) -> Path | None:
    """The nearest pyproject.toml from ``start`` (default: the working folder) upwards."""
    here = Path(start or os.getcwd()).absolute()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def project_requires_python(pyproject: Path) -> str | None:
    """``[project].requires-python`` of a pyproject.toml, if any."""
    import tomllib  # only for a pyproject: a cached script run never reads one

    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    value = data.get("project", {}).get("requires-python")
    return value if isinstance(value, str) else None


def _looks_like_path(text: str) -> bool:
    return "\n" not in text and "," not in text and text.endswith(_FILE_SUFFIXES)


def parse_requirements(
    value: str | os.PathLike | Sequence[str] | None, base_dir: Path | None = None
) -> list[str]:
    """The requirement entries of ``python_requirements`` in any accepted form.

    Args:
        value: see the module docstring for the accepted forms.
        base_dir: folder that relative file paths are taken from (default: working folder).

    Returns:
        The validated entries, in the order given.

    Raises:
        ValueError: if an entry is malformed or a named file does not exist.
    """
    if value is None:
        return []
    if isinstance(value, os.PathLike):
        return parse_file(_resolve(value, base_dir))
    if isinstance(value, (list, tuple)):
        out = []
        for item in value:
            if isinstance(item, os.PathLike):
                out.extend(parse_file(_resolve(item, base_dir)))
            else:
                out.append(validate(item))
        return out
    if not isinstance(value, str):
        raise TypeError(
            f"python_requirements {value!r} is a {type(value).__name__}; accepted: a string of "
            "specifiers, a list of specifiers, a path to requirements.txt or pyproject.toml, "
            "or 'auto'"
        )
    text = value.strip()
    if not text:
        return []
    if text == AUTO:
        project = find_project(base_dir)
        return pyproject_dependencies(project) if project else []
    if "\n" not in text:
        candidate = _resolve(text, base_dir)
        if candidate.is_file() and (_looks_like_path(text) or os.sep in text):
            return parse_file(candidate)
        if _looks_like_path(text):
            raise ValueError(f"requirements file {str(candidate)!r} not found")
    return parse_text(text, base_dir=base_dir)


class ScriptHeader:
    """What a script declares about its environment in its leading comments. (A plain
    class: a cached ``localtailr run`` reads it and would pay for importing dataclasses.)"""

    __slots__ = ("requirements", "secrets", "requires_python", "text")
    requirements: list[str]
    secrets: list[str]
    requires_python: str | None
    text: str

    def __init__(self, requirements: list[str] | None = None, secrets: list[str] | None = None,
                 requires_python: str | None = None, text: str = ""):
        set_ = object.__setattr__
        set_(self, "requirements", [] if requirements is None else requirements)
        set_(self, "secrets", [] if secrets is None else secrets)
        set_(self, "requires_python", requires_python)
        set_(self, "text", text)  # the declaring lines, verbatim (for a fast cache look-up)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: ScriptHeader is immutable")

    def _values(self) -> tuple:
        return (self.requirements, self.secrets, self.requires_python, self.text)

    def __eq__(self, other: object) -> bool:
        return self._values() == other._values() if type(other) is ScriptHeader else NotImplemented

    # unhashable (mutable lists inside), as the dataclass was; mypy types __hash__ as a method
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"ScriptHeader(requirements={self.requirements!r}, secrets={self.secrets!r}, "
                f"requires_python={self.requires_python!r}, text={self.text!r})")


def parse_secret_names(text: str) -> list[str]:
    """Names in a ``# secrets:`` header: comma- or space-separated."""
    names = [n for n in re.split(r"[,\s]+", text.strip()) if n]
    for name in names:
        if not _SECRET_NAME_RE.fullmatch(name):
            raise ValueError(
                f"secret name {name!r} in the '# secrets:' header is not valid; accepted: "
                "letters, digits, '_', '.', '-' and '/', separated by commas"
            )
    return names


def parse_script_header(source: str, check: bool = True) -> ScriptHeader:
    """Read ``# requirements:``, ``# secrets:`` and a PEP 723 block from a script's text.

    The ``# requirements:``/``# secrets:`` lines are read from the leading comment block
    (before the first line of code); there may be several of each. With ``check=False``
    only ``secrets`` and ``text`` are filled (cheap: no requirement is parsed).
    """
    requirements: list[str] = []
    secrets: list[str] = []
    declared: list[str] = []
    for line in source.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        match = _HEADER_RE.fullmatch(stripped)
        if not match:
            continue
        declared.append(stripped)
        kind, rest = match.group(1).lower(), match.group(2)
        if kind == "requirements":
            if check:
                requirements.extend(parse_text(rest))
        else:
            secrets.extend(parse_secret_names(rest))
    requires_python = None
    blocks = [m for m in _PEP723_RE.finditer(source) if m.group("type") == "script"]
    if len(blocks) > 1:
        raise ValueError("the script has more than one '# /// script' block (PEP 723 allows one)")
    if blocks:
        block = blocks[0]
        declared.append(block.group(0))
    if blocks and check:
        content = "".join(
            line[2:] if line.startswith("# ") else line[1:]
            for line in block.group("content").splitlines(keepends=True)
        )
        from . import toml_subset  # only to parse the block: a cached script run reads the raw text

        meta: dict | None = toml_subset.loads(content)  # a simple block, without tomllib
        if meta is None:
            import tomllib  # only for a block beyond that subset

            try:
                meta = tomllib.loads(content)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"the '# /// script' block is not valid TOML: {exc}") from None
        deps = meta.get("dependencies", [])
        if not isinstance(deps, list):
            raise ValueError(
                "'dependencies' in the '# /// script' block must be a list of strings"
            )
        requirements.extend(validate(d) for d in deps)
        rp = meta.get("requires-python")
        if rp is not None:
            # packaging (~20 ms): only for requires-python
            from packaging.specifiers import InvalidSpecifier, SpecifierSet

            try:
                SpecifierSet(rp)
            except InvalidSpecifier:
                raise ValueError(
                    f"requires-python {rp!r} in the '# /// script' block is not a version "
                    "specifier such as '>=3.11'"
                ) from None
            requires_python = rp
    return ScriptHeader(requirements, secrets, requires_python, "\n".join(declared))
