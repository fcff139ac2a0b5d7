"""``localtailr user ...`` and ``localtailr group ...``."""

from __future__ import annotations

import click

from ..platform import groups, tags, users
from .common import caller_options, read_secret_value, table

USER_COLUMNS = ["user_id", "name", "first_name", "last_name", "email", "groups", "is_system_user", "disabled"]


@click.group()
def user():
    """Users: add, get, ls, exists, rm, disable, enable."""


@user.command("add")
@click.argument("name")
@click.option("--first-name")
@click.option("--last-name")
@click.option("--email")
@click.option("--group", "groups_", multiple=True, help="A group to join (repeatable).")
@click.option("--system", is_flag=True, help="A system (non-interactive) user.")
@click.option("--password", "ask_password", is_flag=True, help="Read a password from stdin or a prompt.")
@caller_options
def user_add(opts, name, first_name, last_name, email, groups_, system, ask_password):
    """Create a user."""
    password = read_secret_value("password") if ask_password else None
    opts.emit(users.add(opts.ctx(), name, first_name, last_name, email, password, list(groups_), system))


@user.command("get")
@click.argument("name")
@caller_options
def user_get(opts, name):
    """Show a user (by name or id)."""
    opts.emit(users.get(opts.ctx(), int(name) if name.isdigit() else name))


@user.command("ls")
@caller_options
def user_ls(opts):
    """List users."""
    rows = users.ls(opts.ctx())
    opts.emit(rows, lambda rows: _table(rows, USER_COLUMNS))


@user.command("exists")
@click.argument("name")
@caller_options
def user_exists(opts, name):
    """Exit 0 if the user exists, 1 if not."""
    found = users.exists(opts.ctx(), name)
    opts.emit(found, "yes" if found else "no")
    raise SystemExit(0 if found else 1)


@user.command("rm")
@click.argument("name")
@caller_options
def user_rm(opts, name):
    """Remove a user."""
    users.remove(opts.ctx(), name)
    opts.emit({"removed": name}, f"removed user {name}")


@user.command("disable")
@click.argument("name")
@caller_options
def user_disable(opts, name):
    """Disable a user: they can no longer act."""
    opts.emit(users.set_disabled(opts.ctx(), name, True))


@user.command("enable")
@click.argument("name")
@caller_options
def user_enable(opts, name):
    """Enable a disabled user."""
    opts.emit(users.set_disabled(opts.ctx(), name, False))


@click.group()
def group():
    """Groups: add, get, ls, exists, rm, add-users, rm-users."""


@group.command("add")
@click.argument("name")
@caller_options
def group_add(opts, name):
    """Create a group."""
    opts.emit(groups.add(opts.ctx(), name))


@group.command("get")
@click.argument("name")
@caller_options
def group_get(opts, name):
    """Show a group (by name or id)."""
    opts.emit(groups.get(opts.ctx(), int(name) if name.isdigit() else name))


@group.command("ls")
@caller_options
def group_ls(opts):
    """List groups."""
    opts.emit(groups.ls(opts.ctx()))


@group.command("exists")
@click.argument("name")
@caller_options
def group_exists(opts, name):
    """Exit 0 if the group exists, 1 if not."""
    found = groups.exists(opts.ctx(), name)
    opts.emit(found, "yes" if found else "no")
    raise SystemExit(0 if found else 1)


@group.command("rm")
@click.argument("name")
@caller_options
def group_rm(opts, name):
    """Remove a group."""
    groups.remove(opts.ctx(), name)
    opts.emit({"removed": name}, f"removed group {name}")


@group.command("add-users")
@click.argument("name")
@click.argument("users_", metavar="USER...", nargs=-1, required=True)
@caller_options
def group_add_users(opts, name, users_):
    """Add users to a group."""
    opts.emit(groups.add_users(opts.ctx(), name, list(users_)))


@group.command("rm-users")
@click.argument("name")
@click.argument("users_", metavar="USER...", nargs=-1, required=True)
@caller_options
def group_rm_users(opts, name, users_):
    """Remove users from a group."""
    opts.emit(groups.remove_users(opts.ctx(), name, list(users_)))


def _table(rows, columns):
    return table(rows, columns)


@click.group()
def tag():
    """Platform tags: get, set, ls."""


@tag.command("get")
@click.argument("name")
@caller_options
def tag_get(opts, name):
    """Print the value of tag NAME."""
    value = tags.get(opts.ctx(), name)
    opts.emit({"name": name, "value": value}, value)


@tag.command("set")
@click.argument("name")
@click.argument("value")
@caller_options
def tag_set(opts, name, value):
    """Set tag NAME to VALUE (admins only)."""
    tags.set(opts.ctx(), name, value)
    opts.emit({"name": name, "value": value}, f"{name} = {value}")


@tag.command("ls")
@click.argument("prefix", default="")
@caller_options
def tag_ls(opts, prefix):
    """List tags (whose names start with PREFIX)."""
    opts.emit(tags.ls(opts.ctx(), prefix))
