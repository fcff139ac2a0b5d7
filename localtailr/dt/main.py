"""``dt <command> <sub-command> [arguments] [--options]``: the entry point.

Every call prints its answer on stdout (JSON for data, raw text or bytes otherwise) and
exits 0; any failure prints one line on stderr and exits non-zero (1: the operation
failed, 2: the command line is wrong), changing nothing. The command modules are imported
only when called, so a call costs Python, the module it needs and the operation.
"""

from __future__ import annotations

import importlib
import json
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


def _emit(value, pretty: bool) -> None:
    if value is None:
        return
    if isinstance(value, bytes):
        sys.stdout.buffer.write(value)
    elif isinstance(value, str):
        sys.stdout.write(value if value.endswith("\n") or not value else value + "\n")
    else:
        sys.stdout.write(json.dumps(value, indent=2 if pretty else None, default=str) + "\n")
    sys.stdout.flush()


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "failed"


def run(argv: list[str]) -> int:
    """Run one ``dt`` call; the exit code."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write("usage: dt <command> <sub-command> [arguments] [--options]\n"
                         f"commands: {', '.join(sorted(MODULES))}\n")
        return 0 if argv else EXIT_USAGE
    cmd = argv[0]
    if cmd not in MODULES:
        sys.stderr.write(f"dt: unknown command {cmd!r}; commands: {', '.join(sorted(MODULES))}\n")
        return EXIT_USAGE
    module = importlib.import_module(f"{__package__}.{MODULES[cmd]}")
    table = module.COMMANDS[cmd]
    sub = argv[1] if len(argv) > 1 else None
    where = f"dt {cmd} {sub}" if sub else f"dt {cmd}"
    if sub not in table:
        reason = module.UNSUPPORTED.get(cmd, {}) if hasattr(module, "UNSUPPORTED") else {}
        if sub in reason or "*" in reason:
            sys.stderr.write(f"{where}: {reason.get(sub) or reason['*']}\n")
            return EXIT_FAILED
        sys.stderr.write(f"dt {cmd}: unknown sub-command {sub!r}; "
                         f"sub-commands: {', '.join(sorted(table))}\n")
        return EXIT_USAGE
    sp, fn = table[sub]
    try:
        args = parse(argv[2:], sp, where)
        value = fn(args)
    except UsageError as exc:
        sys.stderr.write(f"{_one_line(exc)}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - every failure is one line on stderr
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        sys.stderr.write(f"{where}: {_one_line(message)}\n")
        return EXIT_FAILED
    _emit(value, args.flag("pretty"))
    return 0


def main() -> int:
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
