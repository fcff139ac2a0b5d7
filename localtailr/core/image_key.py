"""What an image key rests on besides the image itself: its format, the interpreter running
this process and the host folders every job environment falls back on.

Kept apart from ``image_spec`` (and light: no dataclasses, no requirement parsing) so that
``localtailr run`` can find a cached environment without importing the image machinery.
"""

from __future__ import annotations

import os
import sys

KEY_FORMAT = 1
KEY_LENGTH = 20

_host: list[str] = []


def current_interpreter_path() -> str:
    """The real path of the interpreter running this process (the base one in a venv)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def source_folder() -> str:
    """The folder that holds the ``localtailr`` package."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def host_paths() -> list[str]:
    """What a job environment falls back on (after its own packages): the folder holding
    localtailr and the site-packages of the environment localtailr runs in."""
    if not _host:
        import sysconfig  # only here: a cached run needs it once, other commands never

        paths = [source_folder()]
        for name in ("purelib", "platlib"):
            p = sysconfig.get_paths()[name]
            if p not in paths:
                paths.append(p)
        _host.extend(paths)
    return list(_host)
