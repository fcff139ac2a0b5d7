"""``/api/...`` for data with history: versions, restore, diff, lineage, commits, retention,
the collector, fsck and the debug dump (registered on ``api``'s one route)."""

from __future__ import annotations

import os
import tempfile

from flask import send_file

from ..platform import blob_gc, blob_history, commits, debug_dump, fsck, kv, lineage, retention
from .api import arg, op


def _seconds(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"argument 'grace' must be a number of seconds, not {value!r}") from None


def _days(value):
    """``keep_days`` as JSON gives it (a number), or as a form does (text)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"argument 'keep_days' must be a number of days, not {value!r}") from None
    return value


op("blob", "history")(lambda ctx: blob_history.history(ctx, arg("name")))
op("blob", "diff")(lambda ctx: {"diff": blob_history.diff(ctx, arg("name"), arg("a", kind=int), arg("b", kind=int))})
op("blob", "lineage")(lambda ctx: lineage.blob(ctx, arg("name"), arg("version", None, int)))
op("blob", "restore", "POST")(lambda ctx: blob_history.restore(ctx, arg("name"), arg("version", kind=int)))
op("blob", "gc", "POST")(lambda ctx: blob_gc.collect(ctx, grace=_seconds(arg("grace", blob_gc.GRACE))))
op("retention", "ls")(lambda ctx: retention.ls(ctx))
op("retention", "set", "POST")(lambda ctx: retention.set_rule(
    ctx, arg("prefix"), arg("keep_versions", None, int), _days(arg("keep_days", None))))
op("retention", "rm", "POST")(lambda ctx: retention.rm(ctx, arg("prefix")))

op("kv", "history")(lambda ctx: kv.history(ctx, arg("key")))
op("kv", "restore", "POST")(lambda ctx: {"version": kv.restore(ctx, arg("key"), arg("version", kind=int))})
op("secret", "history")(lambda ctx: kv.history(ctx, arg("key"), kv.SECRETS))

op("commit", "ls")(lambda ctx: commits.ls(ctx, arg("limit", 50, int), arg("offset", 0, int)))
op("commit", "show")(lambda ctx: commits.show(ctx, arg("commit_id", kind=int)))
op("run", "io")(lambda ctx: lineage.run_io(ctx, arg("run_id", kind=int)))
op("fsck", "check")(lambda ctx: fsck.check(ctx))
op("fsck", "fix", "POST")(lambda ctx: fsck.check(ctx, fix=True))


@op("debug", "dump")
def debug_dump_zip(ctx):
    """The debug archive, as a download (admins only)."""
    fd, path = tempfile.mkstemp(suffix=".zip")
    os.close(fd)
    try:
        debug_dump.dump(ctx, path, arg("runs", 20, int))
        f = open(path, "rb")
    finally:
        os.unlink(path)  # the open file stays readable until it is sent
    return send_file(f, mimetype="application/zip", as_attachment=True, download_name="localtailr-debug.zip")
