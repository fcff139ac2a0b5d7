"""``debug dump FILE.zip``: what a maintainer needs to see a bug, and never a secret.

The archive holds ``versions.json`` (localtailr, Python, SQLite, schema), ``settings.json``
(the home, retention rules, tags, the ``LOCALTAILR_*``/``DATATAILR_*`` variables),
``status.json`` (the daemon's ``daemon.json``), ``daemon.log`` (its end), ``schema.sql``
and ``counts.json`` (rows a table), and for each of the last runs ``runs/<id>/run.json``
(the run and its events) with the end of its ``stdout`` and ``stderr``.

Every text is scrubbed before it is written: the web token, the secret keys and every
secret's value (decrypted only to be searched for) become ``[redacted]`` wherever they
appear, logs included.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import sys
import time
import zipfile
from importlib import metadata
from pathlib import Path

from .. import store
from ..store import keyring
from . import acl, retention
from .context import Context

REDACTED = "[redacted]"
TAIL = 256 << 10  # bytes of each log kept


def _secret_values(ctx: Context) -> list[str]:
    values: set[str] = set()
    if ctx.home.token_file.exists():
        values.add(ctx.home.token_file.read_text().strip())
    try:
        values.update(k.decode() for k in keyring.keys(ctx.home))
    except Exception:  # noqa: BLE001 - no usable key: nothing of it to hide
        pass
    for key, token in ctx.conn.execute("SELECT key, token FROM secrets"):
        try:
            values.add(keyring.decrypt(ctx.home, token, key))
        except Exception:  # noqa: BLE001 - undecryptable: its value cannot leak either
            pass
    return sorted((v for v in values if v), key=len, reverse=True)  # longest first: no partial leftovers


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - TAIL))
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def dump(ctx: Context, path: str | os.PathLike, runs: int = 20) -> dict:
    """Write the archive to ``path`` (admins only); returns its path and the names inside."""
    acl.require_admin(ctx, "write a debug dump")
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 0:
        raise ValueError(f"invalid runs {runs!r}: a whole number from 0")
    dest = Path(path)
    if dest.is_dir() or not dest.parent.is_dir():
        raise ValueError(f"cannot write {dest}: give a file path in an existing folder")
    hidden = _secret_values(ctx)
    conn = ctx.conn

    def scrub(text: str) -> str:
        for value in hidden:
            text = text.replace(value, REDACTED)
        return text

    files: dict[str, str] = {}

    def add(name: str, data) -> None:
        files[name] = scrub(data if isinstance(data, str) else json.dumps(data, indent=2, default=str))

    try:
        version = metadata.version("localtailr")
    except metadata.PackageNotFoundError:
        version = "unknown"
    add("versions.json", {"localtailr": version, "python": sys.version, "platform": platform.platform(),
                          "sqlite": sqlite3.sqlite_version, "schema": store.schema_version(conn),
                          "written_at": time.time()})
    add("settings.json", {
        "home": str(ctx.home.root), "retention": retention.ls(ctx),
        "tags": {r[0]: r[1] for r in conn.execute("SELECT name, value FROM tags")},
        "environment": {k: v for k, v in os.environ.items() if k.startswith(("LOCALTAILR_", "DATATAILR_"))},
    })
    status = ctx.home.root / "daemon.json"
    add("status.json", status.read_text() if status.exists() else "{}")
    add("daemon.log", _tail(ctx.home.root / "daemon.log"))
    add("schema.sql", "\n".join(r[0] + ";" for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type DESC, name")))
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    add("counts.json", {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables})
    for row in conn.execute("SELECT * FROM runs ORDER BY run_id DESC LIMIT ?", (runs,)).fetchall():
        rid = row["run_id"]
        events = [dict(e) for e in conn.execute(
            "SELECT at, state, detail FROM run_events WHERE run_id = ? ORDER BY at, rowid", (rid,))]
        add(f"runs/{rid}/run.json", {**dict(row), "events": events})
        for stream in ("stdout", "stderr"):
            add(f"runs/{rid}/{stream}", _tail(ctx.home.run_dir(rid) / stream))
    tmp = dest.with_name(f".{dest.name}.part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    os.replace(tmp, dest)
    return {"path": str(dest), "files": sorted(files)}
