"""``localtailr kv ...``, ``localtailr secret ...`` and ``localtailr blob ...``."""

from __future__ import annotations

import os
import sys

import click

from ..core.errors import NotFoundError, PermissionError
from ..platform import acl as acl_ops
from ..platform import blob as blob_ops
from ..platform import groups
from ..platform import kv as kv_ops
from .common import caller_options, read_secret_value, table
from .history import BLOB_COMMANDS, KV_COMMANDS
from .kv_report import named_acl, put_report
from .progress import Progress

PERMS = ("read", "write", "operate", "access", "promote")


def acl_options(f):
    """``--read NAME --write NAME ...``: users or groups (``group:NAME`` to be explicit)."""
    for perm in reversed(PERMS):
        f = click.option(f"--{perm}", multiple=True, metavar="NAME",
                         help=f"Grant {perm.upper()} to a user or group (repeatable).")(f)
    return f


def add_acl_options(f):
    """``--add-read NAME ...``: entries added to an ACL, keeping the ones it has."""
    for perm in reversed(PERMS):
        f = click.option(f"--add-{perm}", f"add_{perm}", multiple=True, metavar="NAME",
                         help=f"Grant {perm.upper()} too, keeping the ACL's other entries.")(f)
    return f


def acl_from(ctx, given: dict, prefix: str = "") -> dict | None:
    acl = {p: [groups.principal_id(ctx, n) for n in given.get(prefix + p) or ()] for p in PERMS}
    acl = {p: v for p, v in acl.items() if v}
    return acl or None


def acl_table(rows: list[dict], first: str) -> str:
    """Rows of ``{first: ..., "acl": named}`` as a table, the ACL in its one text form."""
    return table([{first: r[first], "acl": acl_ops.describe(r["acl"])} for r in rows])


def _kind(secure: bool):
    return kv_ops.SECRETS if secure else kv_ops.KEYS


@click.group()
def kv():
    """Keys and values per environment: put, get, ls, rm, acls, set-acls, add-acls, history, restore
    (--secure for secrets)."""


@kv.command("put")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--secure", is_flag=True, help="Store a secret (value read from stdin or a prompt).")
@acl_options
@add_acl_options
@caller_options
def kv_put(opts, key, value, secure, **perms):
    """Store VALUE under KEY (stdin without VALUE; a secret's never from the command line).

    --read/--write ... set the key's whole ACL (replacing the one it has); --add-read
    /--add-write ... add entries and keep the others. Without either, a new key gives you
    every permission and an existing key keeps its ACL.

    \b
    Example:
      localtailr kv put db_url sqlite:///x.db --add-read alice
    """
    ctx = opts.ctx()
    kind = _kind(secure)
    if secure:
        if value is not None:
            raise ValueError(
                "a secret's value is read from stdin or a prompt, never from the command line:"
                f" use `localtailr kv put {key} --secure < file` or answer the prompt"
            )
        value = read_secret_value(f"value of secret {key}")
    elif value is None:
        value = sys.stdin.read()
    replace, add = acl_from(ctx, perms), acl_from(ctx, perms, "add_")
    if replace and add:
        raise ValueError("give either --read/--write ... (replace the ACL) or --add-read ... (add to it), not both")
    existed = _exists(ctx, key, kind) if replace else False
    kv_ops.put(ctx, key, value, replace, kind)
    if add:
        kv_ops.add_acls(ctx, key, add, kind)
    opts.emit(*put_report(ctx, key, kind, existed, add))


def _exists(ctx, key: str, kind) -> bool:
    try:
        kv_ops.acls(ctx, key, kind)
    except NotFoundError:
        return False
    except PermissionError:
        return True
    return True


@kv.command("get")
@click.argument("key")
@click.option("--secure", is_flag=True)
@click.option("--version", type=int, help="A past version (plain keys).")
@caller_options
def kv_get(opts, key, secure, version):
    """Print the value under KEY."""
    value = kv_ops.get(opts.ctx(), key, _kind(secure), version)
    opts.emit({"key": key, "value": value}, value)


@kv.command("ls")
@click.option("--secure", is_flag=True)
@caller_options
def kv_ls(opts, secure):
    """List the keys you may read, with their ACLs."""
    ctx = opts.ctx()
    rows = [{"key": e["key"], "acl": named_acl(ctx, e["acl"])} for e in kv_ops.ls(ctx, _kind(secure))]
    opts.emit(rows, lambda rows: acl_table(rows, "key"))


@kv.command("rm")
@click.argument("key")
@click.option("--secure", is_flag=True)
@caller_options
def kv_rm(opts, key, secure):
    """Delete KEY."""
    kv_ops.delete(opts.ctx(), key, _kind(secure))
    opts.emit({"removed": key}, f"removed {key}")


@kv.command("acls")
@click.argument("key")
@click.option("--secure", is_flag=True)
@caller_options
def kv_acls(opts, key, secure):
    """Show the ACL of KEY."""
    ctx = opts.ctx()
    _emit_acl(opts, named_acl(ctx, kv_ops.acls(ctx, key, _kind(secure))))


@kv.command("set-acls")
@click.argument("key")
@click.option("--secure", is_flag=True)
@acl_options
@caller_options
def kv_set_acls(opts, key, secure, **perms):
    """Replace the whole ACL of KEY (add-acls adds entries instead)."""
    ctx = opts.ctx()
    _emit_acl(opts, named_acl(ctx, kv_ops.set_acls(ctx, key, acl_from(ctx, perms) or {}, _kind(secure))))


@kv.command("add-acls")
@click.argument("key")
@click.option("--secure", is_flag=True)
@acl_options
@caller_options
def kv_add_acls(opts, key, secure, **perms):
    """Add entries to the ACL of KEY, keeping the ones it has."""
    ctx = opts.ctx()
    _emit_acl(opts, named_acl(ctx, kv_ops.add_acls(ctx, key, acl_from(ctx, perms) or {}, _kind(secure))))


@click.group()
def secret():
    """Secrets: put (value from stdin or a prompt), get, ls, rm, acls, rotate-key."""


class _ValueFromStdin(click.Command):
    """A command whose value must not be an argument: an extra one is answered with how."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if "extra argument" not in str(exc):
                raise
            raise click.UsageError(
                "a secret's value is read from stdin or a prompt, never from the command line"
                " (it would stay in the shell's history): echo -n VALUE | localtailr secret put NAME"
                "   (or leave VALUE out to be prompted)", ctx) from None


@secret.command("put", cls=_ValueFromStdin)
@click.argument("key")
@acl_options
@caller_options
def secret_put(opts, key, **perms):
    """Store secret KEY; its value is read from stdin or a hidden prompt, never from the
    command line (where it would stay in the shell's history and the process list).

    \b
    Example:
      echo -n s3cret | localtailr secret put api_token
    """
    ctx = opts.ctx()
    value = read_secret_value(f"value of secret {key}")
    kv_ops.put(ctx, key, value, acl_from(ctx, perms), kv_ops.SECRETS)
    opts.emit({"key": key, "environment": ctx.environment}, f"stored secret {key} in {ctx.environment}")


@secret.command("get")
@click.argument("key")
@caller_options
def secret_get(opts, key):
    """Print a secret's value."""
    value = kv_ops.get(opts.ctx(), key, kv_ops.SECRETS)
    opts.emit({"key": key, "value": value}, value)


@secret.command("ls")
@caller_options
def secret_ls(opts):
    """List the secrets you may read (names and ACLs, never values)."""
    ctx = opts.ctx()
    rows = [{"key": e["key"], "acl": named_acl(ctx, e["acl"])} for e in kv_ops.ls(ctx, kv_ops.SECRETS)]
    opts.emit(rows, lambda rows: acl_table(rows, "key"))


@secret.command("rm")
@click.argument("key")
@caller_options
def secret_rm(opts, key):
    """Delete a secret."""
    kv_ops.delete(opts.ctx(), key, kv_ops.SECRETS)
    opts.emit({"removed": key}, f"removed secret {key}")


@secret.command("acls")
@click.argument("key")
@caller_options
def secret_acls(opts, key):
    """Show a secret's ACL."""
    ctx = opts.ctx()
    _emit_acl(opts, named_acl(ctx, kv_ops.acls(ctx, key, kv_ops.SECRETS)))


@secret.command("rotate-key")
@caller_options
def secret_rotate_key(opts):
    """Re-encrypt every secret under a new key."""
    n = kv_ops.rotate_key(opts.ctx())
    opts.emit({"reencrypted": n}, f"re-encrypted {n} secret(s) under a new key")


@click.group()
def blob():
    """Blobs: put, get, ls, exists, rm, get-acl, set-acl; history, restore, diff, gc, retention."""


def _progress(opts, total: int | None):
    """A byte count (and percentage) every 64 MiB of a copy, on a terminal only."""
    line = Progress(opts.as_json)
    if not line.on:
        return None
    state = {"last": 0}

    def show(done: int) -> None:
        if done - state["last"] >= 64 << 20 or (total and done == total):
            state["last"] = done
            pct = f" ({100 * done // total}%)" if total else ""
            line.show(f"copied {done >> 20} MiB{pct}")

    return show


@blob.command("put")
@click.argument("name")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@acl_options
@caller_options
def blob_put(opts, name, path, **perms):
    """Store the file PATH (or - for stdin) as blob NAME."""
    ctx = opts.ctx()
    acl = acl_from(ctx, perms)
    if path == "-":
        info = blob_ops.put(ctx, name, sys.stdin.buffer, acl)
    else:
        size = os.path.getsize(path) if os.path.exists(path) else None
        info = blob_ops.put_file(ctx, name, path, acl, _progress(opts, size))
        Progress.done_line(opts)
    opts.emit(info, lambda d: f"stored {d['name']} ({d['size']} bytes, sha256 {d['sha256'][:12]})")


@blob.command("get")
@click.argument("name")
@click.argument("path", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--version", type=int, help="A past version (default: the current one).")
@caller_options
def blob_get(opts, name, path, version):
    """Write blob NAME to PATH (default: stdout)."""
    ctx = opts.ctx()
    if path in (None, "-"):
        with blob_ops.open_blob(ctx, name, version) as f:
            while chunk := f.read(1 << 20):
                sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    info = blob_ops.get_file(ctx, name, path, _progress(opts, None), version=version)
    Progress.done_line(opts)
    opts.emit(info, lambda d: f"wrote {path} ({d['size']} bytes)")


@blob.command("ls")
@click.argument("path", default="")
@caller_options
def blob_ls(opts, path):
    """List blobs under PATH."""
    rows = blob_ops.ls(opts.ctx(), path)
    opts.emit(rows, lambda rows: table(rows, ["name", "size", "sha256"]))


@blob.command("exists")
@click.argument("name")
@caller_options
def blob_exists(opts, name):
    """Exit 0 if the blob exists, 1 if not."""
    found = blob_ops.exists(opts.ctx(), name)
    opts.emit(found, "yes" if found else "no")
    raise SystemExit(0 if found else 1)


@blob.command("rm")
@click.argument("name")
@caller_options
def blob_rm(opts, name):
    """Delete blob NAME."""
    blob_ops.delete(opts.ctx(), name)
    opts.emit({"removed": name}, f"removed blob {name}")


@blob.command("get-acl")
@click.argument("name")
@caller_options
def blob_get_acl(opts, name):
    """Show the ACL of blob NAME (needs READ): who may read, write ... it."""
    ctx = opts.ctx()
    _emit_acl(opts, named_acl(ctx, blob_ops.get_acl(ctx, name)))


@blob.command("set-acl")
@click.argument("name")
@acl_options
@caller_options
def blob_set_acl(opts, name, **perms):
    """Replace the whole ACL of blob NAME (needs WRITE).

    \b
    Example:
      localtailr blob set-acl reports/q1.csv --read alice --read group:analysts --write root
    """
    ctx = opts.ctx()
    _emit_acl(opts, named_acl(ctx, blob_ops.set_acl(ctx, name, acl_from(ctx, perms) or {})))


def _emit_acl(opts, named: dict) -> None:
    opts.emit(named, acl_ops.describe(named))


for _command in BLOB_COMMANDS:
    blob.add_command(_command)
for _command in KV_COMMANDS:
    kv.add_command(_command)
