"""Shared test setup: every test may use the ``localtailr_home`` fixture of the plugin."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = Path(sys.executable)


@pytest.fixture
def cli(localtailr_home):
    """Run the ``localtailr`` command in the test's home; returns CompletedProcess."""
    import subprocess

    exe = Path(sys.executable).with_name("localtailr")

    def run(*args, input=None, check=False, env=None):
        full_env = {**os.environ, "LOCALTAILR_HOME": str(localtailr_home.root), **(env or {})}
        return subprocess.run(
            [str(exe), *args], input=input, capture_output=True, text=True, env=full_env, check=check
        )

    return run

from support.dt_support import sdk, sdk_venv  # noqa: E402, F401 - the dt parity suite's fixtures
