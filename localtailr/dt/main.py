"""``dt <command> <sub-command> [arguments] [--options]``: the entry point.

Every call prints its answer on stdout (JSON for data, raw text or bytes otherwise) and
exits 0; any failure prints one line on stderr and exits non-zero (1: the operation
failed, 2: the command line is wrong), changing nothing. The command modules are imported
only when called, so a call costs Python, the module it needs and the operation.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys

from .args import UsageError, parse

# command -> module of localtailr.dt that implements its sub-commands (COMMANDS there)
MODULES = {
    "user": "identity", "group": "identity",
    "kv": "data", "tag": "data", "blob": "data",
    "job": "jobs", "log": "jobs",
    "system": "platform_info", "cost": "platform_info", "node": "platform_info",
    "dns": "platform_info", "email": "platform_info", "sms": "platform_info",
    "registry": "platform_info", "settings": "platform_info", "view": "platform_info",
}
EXIT_FAILED, EXIT_USAGE = 1, 2


def render(value, pretty: bool = False) -> bytes:
    """What a call prints for ``value``: JSON for data, text and bytes as they are."""
    if value is None:
        return b""
    if hasattr(value, "read"):  # an open file (a blob)
        with value:
            return value.read()
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return (value if value.endswith("\n") or not value else value + "\n").encode()
    return (json.dumps(value, indent=2 if pretty else None, default=str) + "\n").encode()


def _emit(value, pretty: bool) -> None:
    out = sys.stdout.buffer
    if hasattr(value, "read"):  # an open file (a blob): streamed
        with value:
            shutil.copyfileobj(value, out, 1 << 20)
    else:
        out.write(render(value, pretty))
    out.flush()


def _one_line(text: object) -> str:
    return " ".join(str(text).split()) or "failed"


class Failure(Exception):
    """A call that failed: ``code`` (1 or 2) and one ``line`` saying why."""

    def __init__(self, code: int, line: str):
        super().__init__(line)
        self.code, self.line = code, line


def call(argv: list[str], stdin=None):
    """Run one ``dt`` call in this process; (its value, its Args). Raises Failure."""
    if not argv or argv[0] not in MODULES:
        cmd = argv[0] if argv else ""
        raise Failure(EXIT_USAGE, f"dt: unknown command {cmd!r}; commands: "
                                  f"{', '.join(sorted(MODULES))}")
    cmd = argv[0]
    module = importlib.import_module(f"{__package__}.{MODULES[cmd]}")
    table = module.COMMANDS[cmd]
    sub = argv[1] if len(argv) > 1 else None
    where = f"dt {cmd} {sub}" if sub else f"dt {cmd}"
    if sub not in table:
        reason = getattr(module, "UNSUPPORTED", {}).get(cmd, {})
        if sub is not None and (sub in reason or "*" in reason):
            raise Failure(EXIT_FAILED, f"{where}: {reason.get(sub) or reason['*']}")
        raise Failure(EXIT_USAGE, f"dt {cmd}: unknown sub-command {sub!r}; "
                                  f"sub-commands: {', '.join(sorted(table))}")
    sp, fn = table[sub]
    try:
        args = parse(argv[2:], sp, where)
        args.stdin = stdin
        return fn(args), args
    except UsageError as exc:
        raise Failure(EXIT_USAGE, _one_line(exc)) from None
    except Exception as exc:  # noqa: BLE001 - every failure is one line
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise Failure(EXIT_FAILED, f"{where}: {_one_line(message)}") from None


def run(argv: list[str]) -> int:
    """Run one ``dt`` call, printing its answer; the exit code."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write("usage: dt <command> <sub-command> [arguments] [--options]\n"
                         f"commands: {', '.join(sorted(MODULES))}\n")
        return 0 if argv else EXIT_USAGE
    try:
        value, args = call(argv)
        _emit(value, args.flag("pretty"))
    except Failure as exc:
        sys.stderr.write(exc.line + "\n")
        return exc.code
    except BrokenPipeError:
        return EXIT_FAILED
    return 0


def main() -> int:
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
