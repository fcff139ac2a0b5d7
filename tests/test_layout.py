"""The tests' own layout: shared code lives in tests/support/, no test imports another."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_test_module_imports_another():
    imports = re.compile(r"^\s*(from|import)\s+test_\w+", re.M)
    offenders = [p.name for p in TESTS.rglob("test_*.py") if imports.search(p.read_text())]
    assert offenders == []


def test_modules_that_are_not_tests_live_in_support():
    loose = [p.name for p in TESTS.glob("*.py") if not p.name.startswith("test_")
             and p.name != "conftest.py"]
    assert loose == []
