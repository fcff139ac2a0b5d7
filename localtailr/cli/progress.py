"""One status line on stderr for long work, rewritten in place: shown on a terminal only,
never with ``--json`` or when stderr is piped (scripts read clean output)."""

from __future__ import annotations

import sys


class Progress:
    def __init__(self, as_json: bool = False, stream=None):
        self.stream = stream or sys.stderr
        self.on = not as_json and self.stream.isatty()
        self.shown = False

    def show(self, text: str) -> None:
        if self.on:
            self._write(f"\r\033[K{text}")
            self.shown = True

    def done(self) -> None:
        if self.shown:
            self._write("\r\033[K")
            self.shown = False

    def _write(self, text: str) -> None:  # not click: the fast command line does without it
        self.stream.write(text)
        self.stream.flush()

    @staticmethod
    def done_line(opts) -> None:
        """Clear the line a copy's progress used (when there was one)."""
        line = Progress(opts.as_json)
        line.shown = line.on
        line.done()
