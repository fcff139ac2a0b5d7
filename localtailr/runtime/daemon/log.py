"""The daemon's log: one stamped line on stderr (``<home>/daemon.log``) an event."""

from __future__ import annotations

import sys
import time


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    sys.stderr.write(f"{stamp} {message}\n")
    sys.stderr.flush()
