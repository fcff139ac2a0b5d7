"""An installer started as a child process without ``subprocess``: ``os.posix_spawn`` with
its output appended to the build log and no input. (Importing ``subprocess`` costs a cold
``localtailr run`` ~3 ms, for signal, selectors and threading, before uv could start.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SIGKILL = 9  # signal.SIGKILL, without importing signal (its enums cost ~1 ms)


def spawn(argv: list[str], env: Mapping[str, str], output: int) -> int:
    """Start ``argv[0]`` (a path) with ``env``, its stdout and stderr written to the file
    descriptor ``output`` and stdin ``/dev/null``; its pid.

    Raises:
        OSError: if it cannot be started (not found, not executable).
    """
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, output, 1),
        (os.POSIX_SPAWN_DUP2, output, 2),
    ]
    return os.posix_spawn(argv[0], argv, dict(env), file_actions=actions)


def wait(pid: int) -> int:
    """Wait for the child ``pid``; its exit code (``-N`` when killed by signal N). If the
    wait is interrupted (Ctrl-C), the child is killed and reaped first, as
    ``subprocess.run`` does."""
    try:
        _, status = os.waitpid(pid, 0)
    except BaseException:
        stop(pid)
        raise
    return os.waitstatus_to_exitcode(status)


def stop(pid: int) -> None:
    """Kill the child ``pid`` and reap it (nothing it does outlives a failed build)."""
    try:
        os.kill(pid, SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass  # it had ended and was reaped already
