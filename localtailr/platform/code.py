"""Code snapshots: a copy of a job's module folder, kept in the home, that a saved job
version imports from (so a later edit of the source does not change a saved version).

``snapshot(ctx, folder)`` copies the files the platform would package — inside a git work
tree the tracked and untracked non-ignored files, else every file but the usual junk
(``.git``, ``.venv``, ``__pycache__``, ``node_modules``, ``.env`` ...) — into
``<home>/code/<sha256 of names and contents>/<folder name>/`` and returns that path.
Snapshots are content-addressed and written whole (a temporary folder renamed into
place), so equal code is kept once and a killed copy leaves no half snapshot.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from .context import Context

MAX_FILES = 20_000
MAX_BYTES = 512 * 1024 * 1024
SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__",
                       ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".cache", "dist",
                       "build", ".eggs", ".idea", ".vscode"})
SKIP_FILES = frozenset({".env", ".DS_Store"})


def _git_files(folder: Path) -> list[Path] | None:
    try:
        inside = subprocess.run(["git", "-C", str(folder), "rev-parse", "--is-inside-work-tree"],
                                capture_output=True, text=True, check=False)
    except OSError:
        return None
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    out = subprocess.run(["git", "-C", str(folder), "ls-files", "-z", "--cached", "--others",
                          "--exclude-standard", "--", "."], capture_output=True, check=False)
    if out.returncode != 0:
        return None
    files = []
    for raw in out.stdout.split(b"\0"):
        rel = Path(os.fsdecode(raw)) if raw else None
        if rel and ".." not in rel.parts and rel.name not in SKIP_FILES \
                and (folder / rel).is_file():
            files.append(rel)
    return files


def _walk_files(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")
                         and not os.path.islink(os.path.join(root, d)))
        for name in sorted(names):
            full = Path(root) / name
            if name not in SKIP_FILES and full.is_file():
                files.append(full.relative_to(folder))
    return files


def files(folder: str | os.PathLike) -> list[Path]:
    """The files of ``folder`` a snapshot holds, relative to it."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"cannot snapshot {root}: not a folder")
    found = _git_files(root)
    return sorted(found if found is not None else _walk_files(root))


def snapshot(ctx: Context, folder: str | os.PathLike) -> Path:
    """Copy ``folder``'s code into the home; the snapshot's path (``.../<folder name>``)."""
    root = Path(folder).resolve()
    chosen = files(root)
    if len(chosen) > MAX_FILES:
        raise ValueError(f"cannot snapshot {root}: {len(chosen)} files, more than {MAX_FILES}; "
                         "point the job at its package folder")
    digest = hashlib.sha256()
    total = 0
    for rel in chosen:
        data = (root / rel).read_bytes()
        total += len(data)
        if total > MAX_BYTES:
            raise ValueError(f"cannot snapshot {root}: more than {MAX_BYTES >> 20} MiB of files")
        digest.update(rel.as_posix().encode() + b"\0" + hashlib.sha256(data).digest())
    base = ctx.home.root / "code"
    final = base / digest.hexdigest()[:32]
    target = final / root.name
    if target.is_dir():
        return target
    tmp = base / f".{uuid.uuid4().hex}.part"
    try:
        for rel in chosen:
            dest = tmp / root.name / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, dest)
        (tmp / root.name).mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not target.is_dir():  # not another process's identical snapshot
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
