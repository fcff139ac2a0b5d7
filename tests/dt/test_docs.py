"""docs/datatailr-sdk.md runs as written with the genuine SDK: its ``sh`` and ``python``
blocks marked as running with the SDK (which the generic docs test, test_docs.py, leaves
out: its interpreter has no ``datatailr``), in order, in a fresh home; ``file:`` blocks are
written for later blocks, as there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.doc_blocks import PYTHON, SHELL, blocks

DOC = Path(__file__).resolve().parents[2] / "docs" / "datatailr-sdk.md"
SDK_MARK = "genuine SDK"


def _sdk_blocks():
    return [b for b in blocks(DOC) if b.file or (b.skip and SDK_MARK in b.skip)
            or b.runs]


def test_the_doc_marks_its_sdk_blocks_and_has_enough_of_them():
    runnable = [b for b in _sdk_blocks() if not b.file]
    assert len(runnable) >= 6
    assert {b.language for b in runnable} <= set(PYTHON + SHELL)
    assert any(b.file == "pipeline.py" for b in blocks(DOC))


@pytest.mark.slow
def test_every_block_of_the_doc_runs_with_the_sdk(sdk, tmp_path):
    (sdk.bin / "localtailr").symlink_to(Path(sys.executable).with_name("localtailr"))
    project = tmp_path / "repo"
    project.mkdir()
    outputs = []
    for n, block in enumerate(_sdk_blocks()):
        if block.file:
            (project / block.file).write_text(block.code)
            continue
        script = project / f"block_{n}.{'py' if block.language in PYTHON else 'sh'}"
        script.write_text(block.code)
        argv = [sdk.python, str(script)] if block.language in PYTHON else \
            ["bash", "-e", "-o", "pipefail", str(script)]
        proc = subprocess.run(argv, capture_output=True, text=True, env=sdk.env(), cwd=project,
                              timeout=300, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, f"{block} failed:\n{block.code}\n{proc.stderr[-2000:]}"
        outputs.append(proc.stdout)
    text = "".join(outputs)
    assert outputs[0].startswith("localtailr")
    assert "root postgres://localhost/dev" in text
    assert "hello from the SDK" in text
    assert "completed 50" in text
