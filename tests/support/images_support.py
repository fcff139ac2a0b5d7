"""Shared set-up for the image tests: the offline wheel cache and a script runner."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(os.environ.get("LOCALTAILR_WHEELHOUSE") or ROOT / "wheelhouse")


def ensure_wheelhouse() -> Path:
    """The wheel cache, downloaded by scripts/wheelhouse.sh if it is not there yet."""
    if not (WHEELHOUSE / ".wanted").exists():
        env = {**os.environ, "PY": str(ROOT / ".venv" / "bin" / "python")}
        done = subprocess.run([str(ROOT / "scripts" / "wheelhouse.sh"), str(WHEELHOUSE)],
                              env=env, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"no wheel cache and it could not be downloaded: {done.stderr[-500:]}")
    return WHEELHOUSE


@pytest.fixture
def offline(monkeypatch):
    """Builds use the local wheel cache only: no network."""
    wheelhouse = ensure_wheelhouse()
    monkeypatch.setenv("LOCALTAILR_WHEELHOUSE", str(wheelhouse))
    monkeypatch.setenv("LOCALTAILR_OFFLINE", "1")
    monkeypatch.delenv("LOCALTAILR_INSTALLER", raising=False)
    monkeypatch.delenv("LOCALTAILR_STRICT_PYTHON", raising=False)
    return wheelhouse


@pytest.fixture
def home(localtailr_home):
    """The test's isolated ``Home`` (from the plugin's ``localtailr_home``)."""
    return localtailr_home.home
