"""The hottest commands, answered before click and the other commands are imported:
``localtailr kv get KEY`` and ``localtailr kv put KEY VALUE``, each with ``--json``,
``--env ENV``, ``--as USER`` and ``--home PATH``; and ``localtailr run SCRIPT [ARG ...]``
with no option (an argument that starts with ``-`` leaves it to click).

Anything else, and any error, is left to the full command line (``cli.main``), which
does the same and reports errors its way: a failed get or put changed nothing, so it
is simply done again there.
"""

import sys  # (no __future__ import: it would cost every start a module)

OPTIONS = {"--env": "environment", "--as": "user", "--home": "home"}


def parse(argv: list[str]) -> tuple[str, list[str], dict] | None:
    """(verb, arguments, options) of a command the fast path answers, else None."""
    if len(argv) < 3 or argv[0] != "kv" or argv[1] not in ("get", "put"):
        return None
    verb, args = argv[1], []
    opts: dict[str, str | bool] = {"as_json": False}
    rest = iter(argv[2:])
    for token in rest:
        if token == "--json":
            opts["as_json"] = True
        elif token in OPTIONS:
            value = next(rest, None)
            if value is None or OPTIONS[token] in opts:
                return None
            opts[OPTIONS[token]] = value
        elif token.startswith("-"):
            return None  # --secure, ACL options, --help ...: the full command line
        else:
            args.append(token)
    if len(args) != (1 if verb == "get" else 2):
        return None
    return verb, args, opts


def run_script(argv: list[str]) -> bool:
    """``localtailr run SCRIPT [ARG ...]``, as ``cli.images.run`` does it; False to go the
    full way (an option given, or an error before the script starts)."""
    if len(argv) < 2 or argv[0] != "run" or any(a.startswith("-") for a in argv[1:]):
        return False
    try:
        import os  # what `localtailr run` needs, not `kv get`: the runtime client, the store

        from ..core import environments
        from ..core.home import Home, user_umask
        from ..runtime import client
        from .progress import Progress

        home, user = Home.current(), os.environ.get("LOCALTAILR_USER") or "root"
        ctx = None
        if user != "root" or not home.db_path.exists():
            ctx = _context()  # checks the user exists and is enabled (or makes the home)
            user = ctx.user
        # else the built-in root, which can be neither removed nor disabled: nothing to
        # check, and no store (sqlite3) to import unless the script names secrets
        environment = environments.normalise(None)

        def secret(name: str) -> str:
            from ..platform import kv  # only for a script whose header names secrets

            return kv.get(ctx or _context(), name, kv.SECRETS)

        line = Progress()  # the build's steps, on a terminal only
        try:
            launch = client.prepare_script(home, argv[1], {}, secret, args=argv[2:],
                                           progress=line.show)
        except Exception as exc:
            line.done()
            from ..core.errors import ImageBuildError  # only on a failure

            if isinstance(exc, ImageBuildError):
                from .images import _show_failed_build  # click, only to report the failure

                _show_failed_build(exc)
            raise
        finally:
            line.done()
    except Exception:  # noqa: BLE001 - the full command line reports it
        return False
    env = {**launch.env, "LOCALTAILR_USER": user, "DATATAILR_JOB_ENVIRONMENT": environment}
    os.chdir(launch.cwd)
    os.umask(user_umask())  # the script writes files as the user would (the home stays 077)
    os.execve(launch.argv[0], launch.argv, env)
    return True  # not reached: the script replaced this process


def _context():
    from ..platform.context import context  # the platform, only when a user must be checked

    return context()


def run(argv: list[str]) -> bool:
    """Answer ``argv`` if it is a fast command and succeeds; False to go the full way."""
    parsed = parse(argv)
    if parsed is None:
        return False
    verb, args, opts = parsed
    if verb == "get":
        from ..platform import kv_quick  # a get without the store's imports, when it can

        value = kv_quick.get(args[0], opts.get("home"), opts.get("user"), opts.get("environment"))
        if value is not None:
            _answer(opts, {"key": args[0], "value": value}, value)
            return True
    try:
        from pathlib import Path  # what `kv get|put` needs, not `localtailr run`

        from ..core.home import Home
        from ..platform import kv
        from ..platform.context import context

        home = Home(Path(opts["home"]).expanduser().absolute()) if opts.get("home") else None
        ctx = context(home, opts.get("user"), opts.get("environment"), lazy=True)
        if verb == "get":
            value = kv.get(ctx, args[0])
            data, text = {"key": args[0], "value": value}, value
        else:
            from .kv_report import put_report  # only for put

            kv.put(ctx, args[0], args[1])
            data, text = put_report(ctx, args[0], kv.KEYS)
    except Exception:  # noqa: BLE001 - the full command line reports it
        return False
    _answer(opts, data, text)
    return True


def _answer(opts: dict, data: dict, text: str) -> None:
    if opts["as_json"]:
        import json  # only for --json: it costs the plain call a millisecond

        text = json.dumps(data, indent=2, default=str)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main() -> None:
    """The ``localtailr`` command."""
    if run(sys.argv[1:]) or run_script(sys.argv[1:]):
        return
    from .main import main as full  # click and every command: only when needed

    full()
