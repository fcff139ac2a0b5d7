"""What a command imports, by name: ``python -X importtime`` of it in a subprocess (a count
of modules, never a time: the machine is shared)."""

from __future__ import annotations

import subprocess
import sys

# never on the path of a command that must start fast (each costs ~1-7 ms, or pulls such)
HEAVY = ("pathlib", "re", "enum", "typing", "dataclasses", "datetime", "json", "threading",
         "sqlite3", "socket", "selectors", "urllib.parse", "importlib", "click",
         "localtailr.store", "localtailr.core.home", "localtailr.platform.kv",
         "localtailr.platform.context")


def imported(argv: list[str], env: dict | None = None) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run ``python -X importtime argv...``; (the process, the modules it imported, in order)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True,
                          text=True, env=env, timeout=60)
    names = [line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
             if line.startswith("import time:") and "|" in line]
    return proc, names[1:]  # the first line is the header


def baseline(env: dict | None = None) -> list[str]:
    """The modules a bare ``python -c pass`` imports here (site and its .pth files)."""
    return imported(["-c", "pass"], env)[1]
