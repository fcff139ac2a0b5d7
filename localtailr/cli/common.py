"""What every ``localtailr`` command shares: the caller options, output and errors."""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import sys
from pathlib import Path

import click

from ..core.errors import LocaltailrError, NotFoundError, PermissionError
from ..core.home import Home
from ..platform.context import Context, context


def caller_options(f):
    """``--json``, ``--as USER``, ``--env ENV`` and ``--home PATH`` on a command."""

    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
    @click.option("--as", "as_user", metavar="USER", help="Act as this user (default: LOCALTAILR_USER or root).")
    @click.option("--env", "environment", metavar="ENV", help="dev, pre or prod (default: DATATAILR_JOB_ENVIRONMENT or dev).")
    @click.option("--home", "home", metavar="PATH", help="The home folder (default: LOCALTAILR_HOME or ~/.localtailr).")
    @functools.wraps(f)
    def wrapper(*args, as_json, as_user, environment, home, **kwargs):
        obj = click.get_current_context().find_root().obj or {}
        home = home or obj.get("home")
        state = Options(
            as_json=as_json or obj.get("json", False),
            user=as_user or obj.get("user"),
            environment=environment or obj.get("env"),
            home=Home(Path(home).expanduser().absolute()) if home else Home.current(),
        )
        with handled_errors():
            return f(state, *args, **kwargs)

    return wrapper


class Options:
    def __init__(self, as_json: bool, user: str | None, environment: str | None, home: Home):
        self.as_json, self.user, self.environment, self.home = as_json, user, environment, home
        if home and "LOCALTAILR_HOME" not in os.environ:
            # children (jobs, the daemon) see the same home
            os.environ["LOCALTAILR_HOME"] = str(home.root)

    def ctx(self) -> Context:
        return context(self.home, self.user, self.environment)

    def emit(self, data, text=None) -> None:
        """Print ``data`` as JSON with --json, else ``text`` (a string or a function of data)."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, default=str))
        elif text is None:
            click.echo(human(data))
        else:
            click.echo(text(data) if callable(text) else text)


def human(data) -> str:
    if isinstance(data, list):
        if data and isinstance(data[0], dict):
            return table(data)
        return "\n".join(str(x) for x in data)
    if isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in data.items())
    return "" if data is None else str(data)


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    if not rows:
        return "(none)"
    columns = columns or list(rows[0])
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


class handled_errors:
    """Turn a user's error into one line on stderr and exit code 1, never a traceback."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit)):
            return False
        if isinstance(exc, (NotFoundError, PermissionError, LocaltailrError, ValueError, KeyError,
                            OSError, sqlite3.OperationalError)):
            message = str(exc) if not isinstance(exc, KeyError) or isinstance(exc, NotFoundError) else f"not found: {exc}"
            click.echo(f"error: {message}", err=True)
            sys.exit(1)
        return False


def read_secret_value(prompt: str) -> str:
    """A secret's value from stdin (piped) or a hidden prompt; never from argv."""
    if sys.stdin.isatty():
        return click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    value = sys.stdin.read()
    return value.removesuffix("\n")
