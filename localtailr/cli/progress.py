"""One status line on stderr for long work, rewritten in place: shown on a terminal only,
never with ``--json`` or when stderr is piped (scripts read clean output)."""

from __future__ import annotations

import sys

import click


class Progress:
    def __init__(self, as_json: bool = False, stream=None):
        self.stream = stream or sys.stderr
        self.on = not as_json and self.stream.isatty()
        self.shown = False

    def show(self, text: str) -> None:
        if self.on:
            click.echo(f"\r\033[K{text}", file=self.stream, nl=False)
            self.shown = True

    def done(self) -> None:
        if self.shown:
            click.echo("\r\033[K", file=self.stream, nl=False)
            self.shown = False

    @staticmethod
    def done_line(opts) -> None:
        """Clear the line a copy's progress used (when there was one)."""
        line = Progress(opts.as_json)
        line.shown = line.on
        line.done()
