"""Processes for tests/test_secret_rotation.py: secret writers and key rotators.

``python secret_workers.py write NAME COUNT ACK``: puts ``NAME-0`` .. ``NAME-<COUNT-1>``
under the secret NAME, appending each value to ACK once the put has returned.
``python secret_workers.py rotate COUNT DONE [STOP]``: rotates the key COUNT times (0: for
ever, or until the file STOP exists), appending a line to DONE after each rotation and
pausing a few milliseconds, so that the writers are not starved of the lock.
"""

from __future__ import annotations

import os
import sys
import time
from itertools import count as counter

from localtailr import Secrets
from localtailr.platform import kv
from localtailr.platform.context import context


def write(name: str, count: int, ack: str) -> None:
    secrets = Secrets()
    with open(ack, "a") as f:
        for i in range(count):
            value = f"{name}-{i}"
            secrets.put(name, value)
            f.write(value + "\n")
            f.flush()


def rotate(count: int, done: str, stop: str | None = None) -> None:
    with open(done, "a") as f:
        for i in counter(1):
            kv.rotate_key(context())
            f.write(f"{i}\n")
            f.flush()
            if i == count or (stop and os.path.exists(stop)):
                return
            time.sleep(0.001)


if __name__ == "__main__":
    what, *args = sys.argv[1:]
    if what == "write":
        write(args[0], int(args[1]), args[2])
    else:
        rotate(int(args[0]), *args[1:])
