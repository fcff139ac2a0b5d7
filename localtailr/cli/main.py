"""``localtailr``: the platform's verbs on the command line.

Commands are imported when used (``LazyGroup``): ``localtailr kv get`` does not pay for
the daemon, the web app or psutil, and ``localtailr run`` starts its script sooner.
"""

from __future__ import annotations

import importlib
import sys

import click

from ..core.home import private_umask
from ..platform import home as home_ops
from ..platform import status
from .common import caller_options

# command name -> "module:attribute" (modules under localtailr.cli)
LAZY = {
    "user": "identity:user",
    "group": "identity:group",
    "tag": "identity:tag",
    "kv": "data:kv",
    "secret": "data:secret",
    "blob": "data:blob",
    "image": "images:image",
    "run": "images:run",
    "job": "jobs:job",
    "logs": "jobs:logs",
    "up": "daemon:up",
    "down": "daemon:down",
    "status": "daemon:status",
    "web": "web:web",
    "commit": "history:commit",
    "lineage": "history:lineage_cmd",
    "fsck": "history:fsck_cmd",
    "debug": "history:debug",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (the pattern of click's docs)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY:
            module, attr = LAZY[name].split(":")
            return getattr(importlib.import_module(f"localtailr.cli.{module}"), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", metavar="PATH", help="The home folder (default: LOCALTAILR_HOME or ~/.localtailr).")
@click.option("--as", "as_user", metavar="USER", help="Act as this user.")
@click.option("--env", metavar="ENV", help="dev, pre or prod.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.version_option(package_name="localtailr")
@click.pass_context
def cli(ctx, home, as_user, env, as_json):
    """localtailr: a data platform that fits on a laptop."""
    ctx.obj = {"home": home, "user": as_user, "env": env, "json": as_json}


@cli.command()
@caller_options
def init(opts):
    """Create the home (if missing) and its database; print where it is."""
    opts.emit(home_ops.init(opts.home, opts.ctx),
              lambda d: f"localtailr home ready at {d['home']} (schema {d['schema_version']})")


@cli.command()
@caller_options
def info(opts):
    """What is in the home: counts of users, groups, keys, secrets, blobs, jobs and runs
    (of what you may read)."""
    opts.emit(status.home(opts.ctx()))


@cli.command()
@click.option("--yes", is_flag=True, help="Really delete everything in the home.")
@caller_options
def reset(opts, yes):
    """Delete the home and everything in it (needs --yes, and an admin).

    A README.md in the home is kept (the checkout's sandbox/README.md), and so is the
    folder that holds it. A folder that is not a localtailr home (no localtailr database
    in it) is refused and left as it is.
    """
    if not yes:
        click.echo(f"error: this deletes {opts.home.root} and everything in it; add --yes", err=True)
        sys.exit(1)
    home_ops.reset(opts.home, opts.ctx)
    opts.emit({"removed": str(opts.home.root)}, lambda d: f"removed {d['removed']}")


def main() -> None:
    private_umask()  # what a command writes in the home (logs, a script's run folder) is private
    cli(prog_name="localtailr")
