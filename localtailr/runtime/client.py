"""The runtime as the faces see it: make sure the daemon runs, wake it, stop it, ask after it.

Faces (sdk, cli, web, dt) import this module and nothing else of ``localtailr.runtime``
(the import contract in ``.importlinter`` checks it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType

from ..core.home import Home
from ..core.runs import TERMINAL


def _control() -> ModuleType:
    # Imported on first use: the daemon's modules (psutil, the supervisor) take ~0.3 s, and
    # every job and workflow task imports the Python face, which imports this client.
    from .daemon import control

    return control


def _loop() -> ModuleType:
    from .daemon import loop  # as _control: only `localtailr up` runs the loop here

    return loop


class AlreadyRunning(RuntimeError):
    """Another daemon holds the home (``serve``)."""


def ensure_daemon(home: Home | None = None, quiet: bool = False, timeout: float = 30.0) -> dict:
    """The running daemon's info (``daemon.json``); start it detached first if none runs."""
    return _control().ensure_running(home, quiet=quiet, timeout=timeout)


def ensure_daemon_for(home: Home, job: dict | None = None, runs: list[dict] | None = None) -> None:
    """Start the daemon when what a call left needs it: a ``job`` with a schedule or one
    that should be running (a service, app or add-in), ``runs`` whose stop was requested
    (a process only the daemon stops; it adopts it first if it was down)."""
    if job is not None and (job.get("schedule") or job.get("desired_state") == "running"):
        ensure_daemon(home)
    elif runs and any(r.get("state") not in TERMINAL for r in runs):
        ensure_daemon(home)


def daemon_info(home: Home) -> dict | None:
    """The running daemon's info, None if no daemon runs for ``home``."""
    return _control().running_info(home)


def describe(info: dict) -> str:
    """One line saying where the daemon is: pid, URL, home and log."""
    return _control().describe(info)


def serve(home: Home, port: int | None = None,
          serve_web: Callable[[Home, int], object] | None = None,
          on_ready: Callable[[dict], None] | None = None,
          serve_dt: Callable[[Home], object] | None = None) -> None:
    """Run the daemon in this process until it is stopped (``localtailr up``), serving the
    web app through ``serve_web(home, port)`` and calling ``on_ready(info)`` once it serves.
    Raises AlreadyRunning if another daemon holds the home."""
    module = _loop()
    try:
        module.Daemon(home, port=port, serve_web=serve_web, on_ready=on_ready,
                      serve_dt=serve_dt).serve()
    except module.AlreadyRunning as exc:
        raise AlreadyRunning(str(exc)) from exc


def stop_daemon(home: Home | None = None, timeout: float | None = None) -> bool:
    """Stop the home's daemon and what it runs; True if one was running."""
    return _control().stop(home, timeout=timeout)


def daemon_status(home: Home | None = None) -> dict:
    """What ``localtailr status`` shows: the daemon (if running) and the runs by state."""
    return _control().status(home)


def prepare_script(home: Home, script: str | os.PathLike, params: Mapping[str, str],
                   secret_getter: Callable[[str], str], args: Sequence[str] = (),
                   progress: Callable[[str], None] | None = None):
    """``localtailr run script.py``: the script's image (built if needed; ImageBuildError
    when that fails) and its command line, variables and folder (a ``ScriptLaunch``)."""
    from .process import script_run  # the image builder loads only for `localtailr run`

    return script_run.prepare_script(home, script, params, secret_getter, args=args,
                                     progress=progress)


def notify(home: Home) -> bool:
    """Wake the daemon (after a commit it should act on); False when none listens."""
    from ..store import wakeup  # the store (sqlite3) loads only for what needs it: a cached
    # `localtailr run` imports this client and nothing of the store

    return wakeup.notify(home)
