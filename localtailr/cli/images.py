"""``localtailr image ls|log|gc|rm`` and ``localtailr run script.py``."""

from __future__ import annotations

import os
import re
import sys
import time

import click

from ..core.errors import ImageBuildError
from ..core.home import user_umask
from ..core.params import parse_params
from ..platform import images as image_ops
from ..platform import kv as kv_ops
from ..runtime import client
from .common import caller_options, table
from .progress import Progress


def parse_age(text: str) -> float:
    """Seconds for an age such as "7d", "12h", "30m", "45s" or a plain number of seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if not m:
        raise ValueError(f"invalid age {text!r}: use a number with s, m, h, d or w, like '7d'")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def _ago(ts) -> str:
    if not ts:
        return "-"
    seconds = max(0, time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


@click.group()
def image():
    """Cached job environments: ls, log, gc, rm."""


@image.command("ls")
@caller_options
def image_ls(opts):
    """List cached environments: key, python, requirements, size, last used, in use."""
    rows = image_ops.ls(opts.ctx())

    def text(rows):
        shown = [
            {
                "key": r["key"][:12],
                "python": r["python"],
                "requirements": ", ".join(r["requirements"]) if isinstance(r["requirements"], list) else r["requirements"],
                "state": r["state"],
                "size": f"{(r['size'] or 0) / 2**20:.1f}M",
                "last used": _ago(r["last_used"]),
                "in use": "yes" if r["in_use"] else "",
            }
            for r in rows
        ]
        return table(shown)

    opts.emit(rows, text)


@image.command("log")
@click.argument("key")
@caller_options
def image_log(opts, key):
    """Print the build log of an environment (a key prefix is enough)."""
    text = image_ops.log(opts.ctx(), key)
    opts.emit({"key": key, "log": text}, text.rstrip("\n"))


@image.command("gc")
@click.option("--older-than", default="7d", show_default=True, help="Remove environments unused for this long.")
@caller_options
def image_gc(opts, older_than):
    """Remove environments not used recently (never one in use; admins only)."""
    removed = image_ops.gc(opts.ctx(), parse_age(older_than))
    opts.emit({"removed": removed}, f"removed {len(removed)} environment(s)" + "".join(f"\n  {k}" for k in removed))


@image.command("rm")
@click.argument("key")
@caller_options
def image_rm(opts, key):
    """Remove one environment (admins only; refused while a run uses it)."""
    full = image_ops.rm(opts.ctx(), key)
    opts.emit({"removed": full}, f"removed {full[:12]}")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("script", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--param", "-p", "params", multiple=True, metavar="K=V", help="A run parameter (repeatable).")
@caller_options
def run(opts, script, args, params):
    """Run SCRIPT in the environment its header asks for (`# requirements: ...`, PEP 723).

    Parameters are available as localtailr.params and LOCALTAILR_PARAM_<K>; secrets named in a
    `# secrets: A, B` header are set as variables A and B. The script's exit code is ours.
    """
    ctx = opts.ctx()
    env_user = {"LOCALTAILR_USER": ctx.user, "DATATAILR_JOB_ENVIRONMENT": ctx.environment}
    line = Progress(opts.as_json)  # the build's steps, on a terminal only
    try:
        launch = client.prepare_script(
            opts.home,
            script,
            parse_params(params),
            lambda name: kv_ops.get(ctx, name, kv_ops.SECRETS),
            args=args,
            progress=line.show,
        )
    except ImageBuildError as exc:
        line.done()
        _show_failed_build(exc)
    finally:
        line.done()
    env = {**launch.env, **env_user}
    # Replace this process with the script: no extra interpreter waiting in between,
    # signals and the exit code go straight through.
    os.chdir(launch.cwd)
    os.umask(user_umask())  # the script writes files as the user would (the home stays 077)
    os.execve(launch.argv[0], launch.argv, env)


def _show_failed_build(exc) -> None:
    """A failed build: its log, then one line saying why; exit code 1."""
    try:
        log = exc.log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        log = ""
    if log:
        click.echo(f"build log ({exc.log_path}):", err=True)
        click.echo(log.rstrip("\n"), err=True)
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)
