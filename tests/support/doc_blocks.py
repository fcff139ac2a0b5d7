"""The fenced code blocks of a Markdown document, each with the marker before it
(``<!-- illustration -->``: shown, not run; ``<!-- file: NAME -->``: written, not run)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ("python", "py", "python3")
SHELL = ("sh", "bash", "shell")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>```+|~~~+)\s*(?P<info>[^`\s]*)[^`]*$")
MARKER = re.compile(r"^<!--\s*(?P<kind>illustration|file)\b:?\s*(?P<arg>[^>]*?)\s*-->\s*$")

@dataclass
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    skip: str | None = None  # the illustration's reason
    file: str | None = None  # write the block here instead of running it

    @property
    def runs(self) -> bool:
        return self.skip is None and self.file is None and self.language in PYTHON + SHELL

    def __str__(self) -> str:
        doc = self.doc.relative_to(ROOT) if self.doc.is_relative_to(ROOT) else self.doc
        return f"{doc}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    """The fenced code blocks of ``doc``, each with the marker the line before it holds."""
    out: list[Block] = []
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, start = m.group("fence"), i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1  # past the closing fence
        before = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(before)
        block = Block(doc, start + 1, m.group("info").lower(), "\n".join(body) + "\n")
        if marker and marker.group("kind") == "illustration":
            block.skip = marker.group("arg") or "illustration"
        elif marker:
            block.file = marker.group("arg")
        out.append(block)
    return out
