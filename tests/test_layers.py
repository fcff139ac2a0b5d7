"""The import contract (.importlinter) holds, and fails on an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([LINT, "--no-cache", "--config", str(root / ".importlinter")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_the_contract_holds():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("module", "upward"), [
    ("core/names.py", "from localtailr.store import transaction"),
    ("store/runs.py", "from localtailr.platform import acl"),
    ("platform/acl.py", "from localtailr.runtime import client"),
    ("runtime/schedule/plan.py", "from localtailr.sdk import job"),
    ("sdk/kv.py", "from localtailr.runtime.process import supervised"),
    ("web/svg.py", "from localtailr import store"),
])
def test_an_upward_import_breaks_the_contract(tmp_path, module, upward):
    shutil.copytree(ROOT / "localtailr", tmp_path / "localtailr",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    assert _lint(tmp_path).returncode == 0
    target = tmp_path / "localtailr" / module
    target.write_text(target.read_text() + f"\n{upward}  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout
