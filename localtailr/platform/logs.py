"""``log read``: a run's stdout or stderr, whole, its last lines, or followed as it grows.

The files are ``runs/<id>/stdout`` and ``runs/<id>/stderr`` under the home, rotated at
10 MiB to ``stdout.1`` (one old file kept). Reading needs READ on the run's job. A job
name instead of a run id means the job's latest run.

A workflow's run has no output of its own: its log is its tasks' output, each line
prefixed by the task's name (as ``docker compose logs`` does), task after task in the
order they started; ``task=NAME`` picks one task.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from ..core import names
from ..core.errors import NotFoundError
from ..core.runs import TERMINAL
from . import jobs
from .context import Context


def resolve_run(ctx: Context, run_id: int | None = None, job: str | None = None) -> int:
    """The run meant by ``run_id`` or, failing that, the latest run of ``job``."""
    if run_id is not None:
        return names.whole_number(run_id, "run id")
    if job is None:
        raise ValueError("give a run id or a job name")
    row = jobs._job_row(ctx, job)
    latest = jobs._latest_run(ctx.conn, row["job_id"])
    if latest is None:
        raise NotFoundError(f"job {row['name']!r} has no runs yet")
    return latest["run_id"]


def _paths(ctx: Context, run_id: int, stderr: bool) -> tuple[Path, Path]:
    name = "stderr" if stderr else "stdout"
    folder = ctx.home.run_dir(run_id)
    return folder / f"{name}.1", folder / name


def _check(ctx: Context, run_id: int) -> None:
    row = jobs._run_row(ctx, run_id)
    jobs._require_run(ctx, row, "read", "read logs")


def read(
    ctx: Context, run_id: int | None = None, job: str | None = None, stderr: bool = False,
    tail: int | None = None, task: str | None = None,
) -> str:
    """A run's output as text (the rotated file first), or its last ``tail`` lines (of
    each task, for a workflow run; ``task`` picks one)."""
    if tail is not None:
        names.whole_number(tail, "tail")
    rid = resolve_run(ctx, run_id, job)
    _check(ctx, rid)
    tasks = _tasks(ctx, rid, task)
    if tasks is not None:
        width = max((len(name) for _, name in tasks), default=0)
        return "".join(_prefixed(name, width, line) for task_id, name in tasks
                       for line in _lines(ctx, task_id, stderr, tail))
    return "".join(_lines(ctx, rid, stderr, tail))


def _lines(ctx: Context, run_id: int, stderr: bool, tail: int | None) -> list[str]:
    old, current = _paths(ctx, run_id, stderr)
    if tail is None:
        return ("".join(_text(p) for p in (old, current))).splitlines(keepends=True)
    return _last_lines([old, current], tail)


def _prefixed(name: str, width: int, line: str) -> str:
    return f"{name:<{width}} | {line if line.endswith(chr(10)) else line + chr(10)}"


def _tasks(ctx: Context, run_id: int, task: str | None) -> list[tuple[int, str]] | None:
    """The task runs ``(run_id, task name)`` of a workflow run (only ``task`` if given);
    None for a run that is not a workflow's."""
    row = jobs._run_row(ctx, run_id)
    is_workflow = row["task_name"] is None and ctx.conn.execute(
        "SELECT type FROM jobs WHERE job_id = ?", (row["job_id"],)).fetchone()[0] == "workflow"
    if not is_workflow:
        if task is not None:
            raise ValueError(f"run {run_id} is not a workflow run: it has no tasks to pick from")
        return None
    found = [(r["run_id"], r["task_name"]) for r in ctx.conn.execute(
        "SELECT run_id, task_name FROM runs WHERE parent_run_id = ? ORDER BY "
        "coalesce(started_at, 1e18), run_id", (run_id,))]
    if task is None:
        return found
    picked = [t for t in found if t[1] == task]
    if not picked:
        names = ", ".join(sorted({name for _, name in found})) or "none yet"
        raise ValueError(f"workflow run {run_id} has no task {task!r}; its tasks: {names}")
    return picked


def _text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _last_lines(paths: list[Path], n: int) -> list[str]:
    if n == 0:
        return []
    lines: deque[str] = deque(maxlen=n)
    for path in paths:
        try:
            with open(path, "rb") as f:
                for raw in f:
                    lines.append(raw.decode("utf-8", errors="replace"))
        except FileNotFoundError:
            continue
    return list(lines)


def follow(
    ctx: Context, run_id: int | None = None, job: str | None = None, stderr: bool = False,
    tail: int | None = None, poll: float = 0.1, timeout: float | None = None,
    task: str | None = None,
) -> Iterator[str]:
    """Yield a run's output lines (without their newline) as they are written, until the run
    has ended and everything written has been read.

    ``tail`` starts from the last lines already there (None: from the start). The file
    being rotated while followed is noticed and read on. ``timeout`` (seconds) ends the
    iteration early, with TimeoutError. A workflow run's tasks are followed together,
    their lines prefixed by the task's name (``task`` picks one).
    """
    rid = resolve_run(ctx, run_id, job)
    _check(ctx, rid)
    if _tasks(ctx, rid, None) is not None:
        yield from _follow_tasks(ctx, rid, task, stderr, tail, poll, timeout)
        return
    if task is not None:
        _tasks(ctx, rid, task)  # raises: not a workflow run
    old, current = _paths(ctx, rid, stderr)
    identity = _identity(current)
    head = _bytes(current)
    position = len(head)
    *lines, pending = (_bytes(old) + head).split(b"\n")
    if tail is not None:
        lines = lines[-tail:] if tail else []
    for raw in lines:
        yield raw.decode("utf-8", errors="replace")
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        ended = jobs._run_row(ctx, rid)["state"] in TERMINAL
        chunk, position, identity = _read_new(current, old, position, identity)
        if chunk:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                yield raw.decode("utf-8", errors="replace")
            continue
        if ended:
            if pending:
                yield pending.decode("utf-8", errors="replace")
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"run {rid} still running after following its log for {timeout:g} s")
        time.sleep(poll)


def _follow_tasks(ctx: Context, rid: int, task: str | None, stderr: bool, tail: int | None,
                  poll: float, timeout: float | None) -> Iterator[str]:
    """Follow the tasks of workflow run ``rid`` until it has ended and all is read."""
    cursors: dict[int, str] = {}
    partial: dict[int, str] = {}
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        ended = jobs._run_row(ctx, rid)["state"] in jobs.TERMINAL
        tasks = [t for t in _tasks(ctx, rid, None) or [] if task is None or t[1] == task]
        width = max((len(name) for _, name in tasks), default=0)
        got = False
        for task_id, name in tasks:
            first = task_id not in cursors
            chunk, cursors[task_id] = read_from(ctx, task_id, stderr, cursors.get(task_id, ""))
            *lines, partial[task_id] = (partial.get(task_id, "") + chunk).split("\n")
            if first and tail is not None:
                lines = lines[-tail:] if tail else []
            for line in lines:
                got = True
                yield _prefixed(name, width, line)[:-1]
        if got:
            continue
        if ended:
            if task is not None and not tasks:
                _tasks(ctx, rid, task)  # raises: no such task
            for task_id, name in tasks:
                if partial.get(task_id):
                    yield _prefixed(name, width, partial[task_id])[:-1]
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"run {rid} still running after following its log for {timeout:g} s")
        time.sleep(poll)


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def _read_new(
    current: Path, old: Path, position: int, identity: tuple[int, int] | None
) -> tuple[bytes, int, tuple[int, int] | None]:
    now = _identity(current)
    data = b""
    if identity is not None and now != identity:
        # rotated: finish the old file (now stdout.1), then start the new one from 0
        if _identity(old) == identity:
            with open(old, "rb") as f:
                f.seek(position)
                data = f.read()
        position = 0
    if now is None:
        return data, position, now
    size = os.stat(current).st_size
    if size < position:  # truncated
        position = 0
    if size > position:
        with open(current, "rb") as f:
            f.seek(position)
            more = f.read(size - position)
        data += more
        position += len(more)
    return data, position, now


def read_from(
    ctx: Context, run_id: int, stderr: bool = False, cursor: str = ""
) -> tuple[str, str]:
    """What run ``run_id`` printed since ``cursor`` ("" for everything), and the new cursor.

    A cursor is opaque: pass back the one the last call returned. It survives rotation.
    Needs READ.
    """
    _check(ctx, run_id)
    old, current = _paths(ctx, run_id, stderr)
    position, identity = 0, None
    if cursor:
        try:
            position, dev, ino = (int(p) for p in cursor.split(":"))
        except ValueError:
            raise ValueError(f"invalid cursor {cursor!r}: pass back the cursor of the last answer") from None
        identity = (dev, ino)
    chunk, position, identity = _read_new(current, old, position, identity)
    new_cursor = "" if identity is None else f"{position}:{identity[0]}:{identity[1]}"
    return chunk.decode("utf-8", errors="replace"), new_cursor
