"""The clock schedules run on: the real time, unless a test has moved it.

A test must be able to say "it is now Monday 09:00" or "an hour has passed" and see
exactly the runs that fall due fire, without sleeping. The daemon is another process,
so the clock lives in a file of the home, ``<home>/clock``, holding one JSON object:

- absent: real time (``time.time()``);
- ``{"offset": 3600.0}``: real time plus an offset (time still moves);
- ``{"frozen": 1710000000.0}``: a fixed instant (time stands still until moved).

How it is used:

- The scheduler (the daemon) reads ``Clock(home).now()`` each time round its loop and
  waits with ``Clock.wait(seconds)``, which returns early when the file changes — so a
  test that advances the clock sees the due runs fire at once.
- A test (or the pytest fixture) calls ``Clock(home).freeze(datetime(...))`` then
  ``.advance(3600)`` and waits for the runs to appear; ``.reset()`` goes back to real time.
- Anything else in localtailr that stamps schedule times (``scheduled_time``, rundate)
  uses ``now(home)``.

Reading is cheap: ``now()`` stats the file and re-reads it only when it changed
(inode, size or modification time) or was written in the last second. Writes replace
the file atomically.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from ..core.home import Home

FILE_NAME = "clock"


def _epoch(at: float | datetime) -> float:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError(f"freeze needs a timezone-aware datetime, not {at!r}")
        return at.timestamp()
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return float(at)
    raise ValueError(f"invalid time {at!r}: use epoch seconds or an aware datetime")


class Clock:
    """The clock of one home: ``now()`` is epoch seconds, real or as a test has set it."""

    def __init__(self, home: Home | str | os.PathLike) -> None:
        root = home.root if isinstance(home, Home) else Path(home)
        self.path = root / FILE_NAME
        self._key: tuple | None = None
        self._state: dict = {}
        self._lock = threading.Lock()

    def _stat_key(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _read(self) -> dict:
        key = self._stat_key()
        # A file changed within the last second is read again: two writes inside one
        # mtime tick can leave the same size, mtime and (reused) inode.
        if key == self._key and (key is None or time.time_ns() - key[2] > 1_000_000_000):
            return self._state
        state: dict = {}
        if key is not None:
            try:
                state = json.loads(self.path.read_text())
            except FileNotFoundError:
                key = None
            except ValueError:
                raise ValueError(
                    f'{self.path} is not valid JSON; it should hold {{"offset": seconds}} '
                    'or {"frozen": epoch seconds}; delete it to use the real time'
                ) from None
            if key is not None and not (
                isinstance(state, dict)
                and set(state) <= {"offset", "frozen"}
                and all(isinstance(v, (int, float)) for v in state.values())
            ):
                raise ValueError(
                    f'{self.path} holds {state!r}; expected {{"offset": seconds}} or '
                    '{"frozen": epoch seconds}'
                )
        with self._lock:
            self._key, self._state = key, state
        return state

    def now(self) -> float:
        """The current time in epoch seconds."""
        state = self._read()
        if "frozen" in state:
            return float(state["frozen"])
        return time.time() + float(state.get("offset", 0.0))

    def utcnow(self) -> datetime:
        """``now()`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), UTC)

    @property
    def frozen(self) -> bool:
        """Whether time stands still (``freeze`` was called and not ``reset``)."""
        return "frozen" in self._read()

    def _write(self, state: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{FILE_NAME}.{os.getpid()}.{threading.get_ident()}")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(json.dumps(state))
        os.replace(tmp, self.path)

    def freeze(self, at: float | datetime | None = None) -> float:
        """Stop time at ``at`` (epoch seconds or aware datetime; default: now). Returns it."""
        t = self.now() if at is None else _epoch(at)
        self._write({"frozen": t})
        return t

    def advance(self, seconds: float) -> float:
        """Move time forward (a frozen clock stays frozen). Returns the new ``now()``."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"advance({seconds!r}): use a number of seconds, 0 or more")
        state = self._read()
        if "frozen" in state:
            self._write({"frozen": float(state["frozen"]) + seconds})
        else:
            self._write({"offset": float(state.get("offset", 0.0)) + seconds})
        return self.now()

    def reset(self) -> None:
        """Back to the real time."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def wait(self, seconds: float, poll: float = 0.02) -> bool:
        """Sleep up to ``seconds`` of real time; return True early if the clock file changed."""
        start_key = self._stat_key()
        deadline = time.monotonic() + max(0.0, seconds)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(poll, left))
            if self._stat_key() != start_key:
                return True

    def __repr__(self) -> str:
        return f"Clock({str(self.path.parent)!r})"


_clocks: dict[Path, Clock] = {}


def clock(home: Home | str | os.PathLike | None = None) -> Clock:
    """The (cached) Clock of ``home``, by default the current home."""
    h = Home.current() if home is None else home
    root = h.root if isinstance(h, Home) else Path(h)
    c = _clocks.get(root)
    if c is None:
        c = _clocks[root] = Clock(root)
    return c


def now(home: Home | str | os.PathLike | None = None) -> float:
    """localtailr's time for schedules, in epoch seconds: ``time.time()`` unless moved."""
    return clock(home).now()
