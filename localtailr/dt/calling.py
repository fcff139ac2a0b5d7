"""The caller of a ``dt`` call: ``LOCALTAILR_USER`` (default the home's built-in ``root``),
``LOCALTAILR_HOME`` and the environment (``--environment``, else ``DATATAILR_JOB_ENVIRONMENT``,
else dev), resolved by the platform."""

from __future__ import annotations

from contextvars import ContextVar

from ..core.home import Home
from ..platform.context import Context, context
from .args import Args

# (home, user, environment) of a call made over HTTP (``remote``) or the daemon's socket
# (``server``); None: this process's variables
CALLER: ContextVar[tuple[Home, str, str | None] | None] = ContextVar("localtailr_dt_caller",
                                                                    default=None)

LIST_OPTIONS = "filter sort offset batch-size"


def ctx(args: Args | None = None) -> Context:
    environment = (args.opt("environment") if args is not None else None) or None
    given = CALLER.get()
    if given is not None:
        return context(given[0], given[1], environment or given[2] or "dev")
    return context(environment=environment)


def page(rows: list, args: Args) -> list:
    """``--offset`` and ``--batch-size`` (-1 or absent: all) applied to ``rows``."""
    try:
        offset = int(args.opt("offset") or 0)
        size = int(args.opt("batch-size") or -1)
    except ValueError:
        raise ValueError("--offset and --batch-size take whole numbers") from None
    if offset < 0:
        raise ValueError(f"--offset {offset}: use a number >= 0")
    rows = rows[offset:]
    return rows if size < 0 else rows[:size]


def boolean(text: str | bool | None, option: str) -> bool:
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"--{option} {text!r}: use true or false")
