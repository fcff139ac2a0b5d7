"""``localtailr``: the platform's verbs on the command line."""

from __future__ import annotations

import shutil
import sys

import click

from .. import store
from ..platform import blob as blob_ops
from ..platform import kv as kv_ops
from .common import caller_options


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    opts.home.ensure()
    conn = store.connection(opts.home)
    opts.emit(
        {"home": str(opts.home.root), "schema_version": store.schema_version(conn)},
        lambda d: f"localtailr home ready at {d['home']} (schema {d['schema_version']})",
    )


@cli.command()
@caller_options
def info(opts):
    """What is in the home: counts of users, groups, keys, secrets, blobs, jobs and runs."""
    ctx = opts.ctx()
    conn = ctx.conn
    count = lambda table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    data = {
        "home": str(opts.home.root),
        "schema_version": store.schema_version(conn),
        "user": ctx.user,
        "environment": ctx.environment,
        "users": count("users"),
        "groups": count("groups"),
        "keys": count("kv"),
        "secrets": count("secrets"),
        "blobs": count("blobs"),
        "blob_bytes": conn.execute("SELECT coalesce(sum(size), 0) FROM blobs").fetchone()[0],
        "jobs": count("jobs"),
        "runs": count("runs"),
    }
    opts.emit(data)


@cli.command()
@click.option("--yes", is_flag=True, help="Really delete everything in the home.")
@caller_options
def reset(opts, yes):
    """Delete the home and everything in it (needs --yes)."""
    if not yes:
        click.echo(f"error: this deletes {opts.home.root} and everything in it; add --yes", err=True)
        sys.exit(1)
    if opts.home.db_path.exists():
        ctx = opts.ctx()
        from ..platform import acl

        acl.require_admin(ctx, "reset the home")
        store.forget(opts.home)
    shutil.rmtree(opts.home.root, ignore_errors=True)
    opts.emit({"removed": str(opts.home.root)}, lambda d: f"removed {d['removed']}")


def main() -> None:
    from . import data, identity

    for group in (identity.user, identity.group, identity.tag, data.kv, data.secret, data.blob):
        cli.add_command(group)
    for name in ("jobs", "images", "daemon", "web"):
        try:
            module = __import__(f"localtailr.cli.{name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"localtailr.cli.{name}":
                raise
            continue
        module.register(cli)
    cli(prog_name="localtailr")


__all__ = ["blob_ops", "cli", "kv_ops", "main"]
