"""Fixtures for the ``dt`` parity suite: the genuine datatailr SDK, unmodified, in its own
environment, calling localtailr's ``dt`` in a fresh home per test.

The SDK is installed from the wheelhouse (``scripts/wheelhouse.sh`` pins datatailr==0.2.3)
into an environment of its own, once a session: installed into localtailr's environment,
its start-up hook (``datatailr_install_notice.pth``) would cost every Python process there
~30 ms and print a notice on stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(os.environ.get("LOCALTAILR_WHEELHOUSE") or ROOT / "wheelhouse")
DT = Path(sys.executable).with_name("dt")
SDK_VERSION = "0.2.3"


@pytest.fixture(scope="session")
def sdk_venv(tmp_path_factory) -> Path:
    """An environment holding the genuine datatailr SDK, flask and fastapi (nothing of
    localtailr)."""
    if not any(WHEELHOUSE.glob(f"datatailr-{SDK_VERSION}-*.whl")):
        pytest.fail(f"no datatailr {SDK_VERSION} wheel in {WHEELHOUSE}: run `make wheels`")
    venv = tmp_path_factory.mktemp("sdk") / "venv"
    uv = Path(sys.executable).with_name("uv")
    subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([str(uv), "pip", "install", "-q", "--offline", "--no-index", "--find-links",
                    str(WHEELHOUSE), "--python", str(venv / "bin" / "python"),
                    f"datatailr=={SDK_VERSION}", "flask", "fastapi", "uvicorn"],
                   check=True)  # flask, fastapi: the app tests import their modules
    return venv


class SDK:
    """Runs Python code with the genuine SDK, ``dt`` first on PATH, in one localtailr home."""

    def __init__(self, venv: Path, home: Path, scratch: Path):
        self.venv, self.home, self.scratch = venv, home, scratch
        self.bin = scratch / "dt-bin"
        self.bin.mkdir(exist_ok=True)
        (self.bin / "dt").symlink_to(DT)
        self.user_home = scratch / "user-home"  # the SDK keeps ~/.dt files: not the real one
        self.user_home.mkdir(exist_ok=True)

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DATATAILR_", "LOCALTAILR_", "PYTEST_", "VIRTUAL_ENV"))}
        env.update(LOCALTAILR_HOME=str(self.home), HOME=str(self.user_home),
                   PATH=f"{self.bin}{os.pathsep}{self.venv / 'bin'}{os.pathsep}{env['PATH']}",
                   LOCALTAILR_WHEELHOUSE=str(WHEELHOUSE), NO_COLOR="1")
        env.update(extra)
        return env

    def run(self, code: str, check: bool = True, cwd: Path | None = None, timeout: float = 120,
            **env: str) -> subprocess.CompletedProcess:
        """Run ``code`` (dedented) with the SDK; its result (stdout, stderr as text)."""
        proc = subprocess.run([self.python, "-c", textwrap.dedent(code)], capture_output=True,
                              text=True, env=self.env(**env), cwd=cwd or self.scratch,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"SDK code failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return proc

    def value(self, code: str, **env: str):
        """The JSON the code prints on its last line."""
        out = self.run(code, **env).stdout.strip().splitlines()
        return json.loads(out[-1])

    def dt(self, *args: str, input: bytes | None = None, **env: str) -> subprocess.CompletedProcess:
        """``dt args...`` as the SDK runs it (no shell)."""
        return subprocess.run([str(DT), *args], capture_output=True, input=input,
                              env=self.env(**env), cwd=self.scratch, timeout=60)


@pytest.fixture
def sdk(sdk_venv, localtailr_home, tmp_path) -> SDK:
    """The genuine SDK against this test's fresh localtailr home."""
    return SDK(sdk_venv, localtailr_home.root, tmp_path)


def api_commands(venv: Path) -> dict:
    """The SDK's own command set (``datatailr/api.json``)."""
    found = next(venv.glob("lib/python*/site-packages/datatailr/api.json"))
    return json.loads(found.read_text())
