"""docs/datatailr-sdk.md runs as written: its ``sh`` and ``python`` blocks, in order, with the
genuine SDK in a fresh home (``text`` blocks are illustrations). A python block whose first
line is ``# file: <name>`` is written to that file for a later block to use."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "datatailr-sdk.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(DOC.read_text())]


def test_the_doc_has_runnable_blocks_and_marks_the_rest():
    kinds = {kind for kind, _ in blocks()}
    assert kinds <= {"sh", "python", "text"}, kinds
    assert sum(kind in ("sh", "python") for kind, _ in blocks()) >= 6


@pytest.mark.slow
def test_every_block_of_the_doc_runs(sdk, tmp_path):
    (sdk.bin / "localtailr").symlink_to(Path(sys.executable).with_name("localtailr"))
    project = tmp_path / "repo"
    project.mkdir()
    outputs = []
    for n, (kind, text) in enumerate(blocks()):
        if kind == "text":
            continue
        if kind == "python":
            first = text.splitlines()[0]
            if first.startswith("# file: "):
                (project / first[len("# file: "):].strip()).write_text(text)
                continue
            script = project / f"block_{n}.py"
            script.write_text(text)
            argv = [sdk.python, str(script)]
        else:
            argv = ["bash", "-euo", "pipefail", "-c", text]
        proc = subprocess.run(argv, capture_output=True, text=True, env=sdk.env(), cwd=project,
                              timeout=300)
        assert proc.returncode == 0, f"block {n} ({kind}) failed:\n{text}\n{proc.stderr[-2000:]}"
        outputs.append(proc.stdout)
    text = "".join(outputs)
    assert "localtailr" in outputs[0]
    assert "root postgres://localhost/dev" in text
    assert "hello from the SDK" in text
    assert "completed 50" in text
