"""Data with history on the command line: ``blob history|restore|diff|gc|retention``,
``kv history|restore``, ``commit ls|show``, ``lineage``, ``fsck`` and ``debug dump``."""

from __future__ import annotations

import datetime
import sys

import click

from ..platform import blob_gc, blob_history, commits, debug_dump, fsck, lineage, retention
from ..platform import kv as kv_ops
from .common import caller_options, table


def when(ts: float | None) -> str:
    return "-" if ts is None else datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


# -- blob ------------------------------------------------------------------------------


@click.command("history")
@click.argument("name")
@caller_options
def blob_history_cmd(opts, name):
    """List every kept version of blob NAME."""
    rows = blob_history.history(opts.ctx(), name)
    opts.emit(rows, lambda rows: table([
        {**r, "time": when(r["time"]), "sha256": (r["sha256"] or "(deleted)")[:12],
         "run": f"#{r['run_id']}" + (f" ({r['task']})" if r["task"] else "") if r["run_id"] else "-"}
        for r in rows], ["version", "time", "size", "sha256", "who", "run", "commit_id"]))


@click.command("restore")
@click.argument("name")
@click.argument("version", type=int)
@caller_options
def blob_restore_cmd(opts, name, version):
    """Make VERSION of blob NAME current again (as a new version)."""
    info = blob_history.restore(opts.ctx(), name, version)
    opts.emit(info, lambda d: f"restored {name} version {version} as version {d['version']}")


@click.command("diff")
@click.argument("name")
@click.argument("a", type=int)
@click.argument("b", type=int)
@caller_options
def blob_diff_cmd(opts, name, a, b):
    """Show a unified diff of versions A and B of text blob NAME."""
    text = blob_history.diff(opts.ctx(), name, a, b)
    opts.emit({"name": name, "a": a, "b": b, "diff": text}, text or "(no difference)")


@click.command("gc")
@click.option("--grace", type=float, default=blob_gc.GRACE, show_default=True,
              help="Never remove a temporary file younger than this (seconds).")
@caller_options
def blob_gc_cmd(opts, grace):
    """Apply retention and free unreferenced objects and stale temporary files."""
    report = blob_gc.collect(opts.ctx(), grace=grace)
    opts.emit(report, lambda r: (
        f"dropped {r['versions_dropped']} blob version(s) and {r['key_versions_dropped']} key version(s);"
        f" removed {r['objects_removed']} object(s) ({r['object_bytes']} bytes) and"
        f" {r['partials_removed']} temporary file(s) ({r['partial_bytes']} bytes); freed {r['bytes_freed']} bytes"))


@click.group("retention")
def blob_retention():
    """How long past versions are kept, per name prefix: set, ls, rm."""


@blob_retention.command("set")
@click.argument("prefix")
@click.option("--versions", "keep_versions", type=int, help="Keep this many newest versions.")
@click.option("--days", "keep_days", type=float, help="Keep versions replaced less than this many days ago.")
@caller_options
def retention_set(opts, prefix, keep_versions, keep_days):
    """Set the rule for blob names starting with PREFIX ('' for all)."""
    opts.emit(retention.set_rule(opts.ctx(), prefix, keep_versions, keep_days))


@blob_retention.command("ls")
@caller_options
def retention_ls(opts):
    opts.emit(retention.ls(opts.ctx()), lambda rows: table(rows, ["prefix", "keep_versions", "keep_days"]))


@blob_retention.command("rm")
@click.argument("prefix")
@caller_options
def retention_rm(opts, prefix):
    retention.rm(opts.ctx(), prefix)
    opts.emit({"removed": prefix}, f"removed the rule for {prefix!r}")


BLOB_COMMANDS = [blob_history_cmd, blob_restore_cmd, blob_diff_cmd, blob_gc_cmd, blob_retention]


# -- kv --------------------------------------------------------------------------------


@click.command("history")
@click.argument("key")
@click.option("--secure", is_flag=True, help="A secret's history (who and when, never values).")
@caller_options
def kv_history_cmd(opts, key, secure):
    """List every version of KEY."""
    rows = kv_ops.history(opts.ctx(), key, kv_ops.SECRETS if secure else kv_ops.KEYS)
    columns = ["version", "time", "who", "run_id", "deleted"] + ([] if secure else ["value"])
    opts.emit(rows, lambda rows: table([{**r, "time": when(r["time"])} for r in rows], columns))


@click.command("restore")
@click.argument("key")
@click.argument("version", type=int)
@caller_options
def kv_restore_cmd(opts, key, version):
    """Put the value of VERSION back under KEY."""
    v = kv_ops.restore(opts.ctx(), key, version)
    opts.emit({"key": key, "version": v}, f"restored {key} version {version} as version {v}")


KV_COMMANDS = [kv_history_cmd, kv_restore_cmd]


# -- commit, lineage, fsck, debug ------------------------------------------------------


@click.group()
def commit():
    """Commits (groups of blob and key writes applied together): ls, show."""


@commit.command("ls")
@click.option("--limit", type=int, default=50, show_default=True)
@caller_options
def commit_ls(opts, limit):
    rows = commits.ls(opts.ctx(), limit=limit)
    opts.emit(rows, lambda rows: table([{**r, "time": when(r["time"])} for r in rows],
                                       ["commit_id", "time", "author", "run_id", "changes", "message"]))


@commit.command("show")
@click.argument("commit_id", type=int)
@caller_options
def commit_show(opts, commit_id):
    c = commits.show(opts.ctx(), commit_id)
    opts.emit(c, lambda c: (f"commit {c['commit_id']} by {c['author']} at {when(c['time'])}"
                            + (f" in run #{c['run_id']}" if c["run_id"] else "") + f"\n    {c['message']}\n"
                            + table(c["changes"], ["resource", "version", "deleted"])))


def _run_label(node: dict) -> str:
    run = node.get("run")
    if run is None:
        return f"run #{node['run_id']}"
    task = f" task {run['task_name']}" if run["task_name"] else ""
    return f"run #{node['run_id']} ({run['job']}{task}, {run['state']})"


def _items(items: list[dict]) -> str:
    return ", ".join(f"{i['resource']}@{i['version']}" for i in items) or "-"


def lineage_text(d: dict) -> str:
    lines = [f"{d['resource']}@{d['version']}"]
    lines.append("  written by " + (_run_label(d["written_by"]) if d["written_by"] else "no run (by hand)"))
    for title, nodes in (("back", d["back"]), ("forward", d["forward"])):
        lines.append(f"{title}:" + ("" if nodes else " -"))
        for n in nodes:
            lines.append(f"  {_run_label(n)}\n    read  {_items(n['read'])}\n    wrote {_items(n['wrote'])}")
    return "\n".join(lines)


@click.command("lineage")
@click.argument("name")
@click.option("--version", type=int, help="A past version (default: the current one).")
@caller_options
def lineage_cmd(opts, name, version):
    """Which run wrote blob NAME, from which inputs, and which runs used it."""
    opts.emit(lineage.blob(opts.ctx(), name, version), lineage_text)


@click.command("fsck")
@click.option("--fix", is_flag=True, help="Repair what can be repaired without losing data.")
@caller_options
def fsck_cmd(opts, fix):
    """Check the home: database, blob objects, temporary files, run folders, secrets."""
    report = fsck.check(opts.ctx(), fix=fix)

    def text(r):
        lines = [f"{p['kind']}: {p['what']}" + (" [fixed]" if p["fixed"] else " [not fixed]" if fix else "")
                 for p in r["problems"]]
        counts = ", ".join(f"{v} {k}" for k, v in r["checked"].items())
        return "\n".join(lines + [f"{len(r['problems'])} problem(s); checked {counts}"])

    opts.emit(report, text)
    if any(not p["fixed"] for p in report["problems"]):
        sys.exit(1)


@click.group()
def debug():
    """What a maintainer needs to see a bug: dump."""


@debug.command("dump")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--runs", type=int, default=20, show_default=True, help="How many recent runs to include.")
@caller_options
def debug_dump_cmd(opts, path, runs):
    """Write FILE.zip: versions, settings, status, the daemon log, recent runs, schema and counts
    (never a secret value or the token)."""
    info = debug_dump.dump(opts.ctx(), path, runs)
    opts.emit(info, lambda d: f"wrote {d['path']} ({len(d['files'])} files)")
