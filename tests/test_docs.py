"""The docs are executable: every code block of README.md and docs/*.md runs as written.

Each document runs in a fresh home and a fresh working folder, its blocks in order (a
later block may use what an earlier one made): ``python`` blocks with this interpreter,
``sh``/``bash``/``shell`` blocks with bash (``set -e``) and the checkout's ``.venv/bin``
first on PATH. A block is not run when the line before its fence is a marker:

- ``<!-- illustration ... -->``: only an illustration (output, a sketch, another shell);
- ``<!-- file: NAME -->``: written to NAME in the working folder, for a later block to use.

Blocks in other languages (``text``, a cron table, no language) are prose, not run.
Documents added to docs/ are picked up without changing this file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.doc_blocks import MARKER, PYTHON, SHELL, Block, blocks  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 600


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LOCALTAILR_USER", "DATATAILR_JOB_ENVIRONMENT", "LOCALTAILR_PORT")}
    env["LOCALTAILR_HOME"] = str(home)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    wheelhouse = ROOT / "wheelhouse"
    if "LOCALTAILR_WHEELHOUSE" not in env and wheelhouse.is_dir():
        env["LOCALTAILR_WHEELHOUSE"] = str(wheelhouse)  # as the Makefile sets it
    return env


def run_block(block: Block, cwd: Path, env: dict, n: int) -> subprocess.CompletedProcess:
    if block.language in PYTHON:
        path = cwd / f"doc_block_{n}.py"  # a file, so the functions it defines are importable
        argv = [sys.executable, str(path)]
    else:
        path = cwd / f"doc_block_{n}.sh"
        argv = ["bash", "-e", "-o", "pipefail", str(path)]
    path.write_text(block.code, encoding="utf-8")
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)


def run_document(doc: Path, tmp: Path) -> list[tuple[Block, str]]:
    """Run every runnable block of ``doc`` in a fresh home; stop the daemon it started."""
    home, cwd = tmp / "home", tmp / "work"
    cwd.mkdir(parents=True)
    env = _env(home)
    done = []
    try:
        for n, block in enumerate(blocks(doc)):
            if block.file:
                (cwd / block.file).write_text(block.code, encoding="utf-8")
                continue
            if not block.runs:
                continue
            result = run_block(block, cwd, env, n)
            assert result.returncode == 0, (
                f"{block} ({block.language}) exited {result.returncode}\n--- code\n{block.code}"
                f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}")
            done.append((block, result.stdout))
    finally:
        subprocess.run([str(Path(sys.executable).with_name("localtailr")), "down"], env=env,
                       capture_output=True, timeout=120)
    return done


def test_the_extractor_reads_fences_and_markers(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("text\n```python\nprint(1)\n```\n\n<!-- illustration: a sketch -->\n```sh\nnope\n```\n"
                   "<!-- file: a.py -->\n\n```python\nx = 1\n```\n```text\nout\n```\n````md\n```python\n"
                   "inner\n```\n````\n")
    found = blocks(doc)
    assert [(b.language, b.code) for b in found] == [
        ("python", "print(1)\n"), ("sh", "nope\n"), ("python", "x = 1\n"), ("text", "out\n"),
        ("md", "```python\ninner\n```\n")]
    assert [b.runs for b in found] == [True, False, False, False, False]
    assert found[1].skip == "a sketch" and found[2].file == "a.py"


def test_every_document_is_picked_up_and_has_runnable_code():
    docs = documents()
    assert ROOT / "README.md" in docs
    assert set((ROOT / "docs").glob("*.md")) <= set(docs)  # new docs join without editing this test
    readme = [b for b in blocks(ROOT / "README.md") if b.runs]
    assert len(readme) >= 6
    assert {b.language for b in readme} >= {"python", "sh"}


def test_a_failing_block_fails_the_document(tmp_path):
    doc = tmp_path / "broken.md"
    doc.write_text("```python\nraise SystemExit('this block is wrong')\n```\n")
    with pytest.raises(AssertionError, match="this block is wrong"):
        run_document(doc, tmp_path / "run")


@pytest.mark.slow
@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_block_runs_as_written(doc, tmp_path):
    out = "".join(stdout for _, stdout in run_document(doc, tmp_path))
    if doc.name == "README.md":  # what the tour says its blocks print
        for expected in ("succeeded 42 rows", "http://127.0.0.1:", "report for Sunday 22 November 2026",
                         "succeeded {'extract': [3, 1, 2], 'clean': [1, 2, 3]}"):
            assert expected in out


@pytest.mark.slow
def test_the_readme_data_snippet_runs_twice(tmp_path):
    data = next(b for b in blocks(ROOT / "README.md") if "User.add" in b.code)
    cwd, env = tmp_path / "work", _env(tmp_path / "home")
    cwd.mkdir()
    outputs = []
    for n in range(2):
        result = run_block(data, cwd, env, n)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert "read: group:group1, user:user1; write: user:user2" in outputs[0]  # names, not ids
