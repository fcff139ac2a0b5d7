"""The image cache: one virtualenv per image key under ``<home>/venvs/``.

``ensure_image(home, spec)`` returns a ready environment. A hit is a file check (no
subprocess, no network). A miss takes a file lock for the key (two processes build one key
once; different keys build side by side), builds into ``venvs/.tmp-<key>-<pid>`` (the
environment written in-process, ``layout``, then one ``uv pip install --prefix``; virtualenv
and pip when uv is absent), runs the build scripts' RUN
lines, writes the marker file last and renames the folder into place: a failed or killed
build never leaves an environment that a later run would use.

Offline: ``LOCALTAILR_WHEELHOUSE`` names a folder of wheels used as ``--find-links``;
``LOCALTAILR_OFFLINE=1`` (or no network) installs from that folder and the package cache
only, and a missing package fails at once with its name.

Inside an environment a ``.pth`` file appends the localtailr source folder and the site
packages of the environment localtailr runs in *after* the environment's own: ``import
localtailr`` works, and the job's own pins win. They are plain folders: the host's own
``.pth`` files are not run at a job's start.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ...core import settings
from ...core.errors import ImageBuildError
from ...core.home import Home
from ...core.image_key import current_interpreter_path
from ...core.image_spec import ImageSpec, host_paths, source_folder
from ...core.keylock import Timeout
from ...core.keylock import build_lock as _lock
from . import bytecode, child, layout
from .built import (  # noqa: F401 (re-exported: the cache's public names)
    LOG_NAME,
    MARKER,
    TOUCH_EVERY,
    BuiltImage,
    alias_lookup,
    alias_remember,
    built_from_marker,
)
from .built import marker_path as _marker
from .built import touch as _touch
from .interpreters import Interpreter, find_interpreter

PTH_NAME = "_localtailr_host.pth"
WHEELHOUSE_ENV = settings.WHEELHOUSE.name
OFFLINE_ENV = settings.OFFLINE.name
INSTALLER_ENV = settings.INSTALLER.name
LOCK_WAIT = 3600.0
TLS_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR")  # what uv reads to build its TLS client

Progress = Callable[[str], None]


def _built(home: Home, key: str, spec: ImageSpec, interp: Interpreter) -> BuiltImage:
    path = home.venvs / key
    return BuiltImage(
        key=key,
        path=path,
        python=str(path / "bin" / "python"),
        env=dict(spec.env),
        log_path=path / LOG_NAME,
        python_version=interp.version,
        warnings=(interp.warning,) if interp.warning else (),
    )


def image_key(spec: ImageSpec) -> str:
    """The cache key of ``spec`` with the interpreter this machine has for it."""
    return spec.key(find_interpreter(spec.python_version))


def ensure_image(home: Home, spec: ImageSpec, progress: Progress | None = None, *,
                 compile_later: bool = False) -> BuiltImage:
    """A ready environment for ``spec``: from the cache, else built once.

    Args:
        home: the localtailr home.
        spec: what the image is made of (``ImageSpec.make(...)`` or ``Image(...).spec()``).
        progress: called with one line of text at each build step (default: stderr).
        compile_later: for a caller about to start a script in the environment at once
            (``localtailr run``): a new environment's bytecode is compiled by a detached
            process once it is in place, while the script starts, not before returning.

    Raises:
        ImageBuildError: if the build fails (the message names a missing package, or the
            failing step and the end of its output; the log is kept in ``venvs/``).
        InterpreterNotFoundError: if the Python version is missing and strict mode is on.
    """
    interp = find_interpreter(spec.python_version)
    key = spec.key(interp)
    marker = _marker(home, key)
    try:
        st = os.stat(marker)
    except FileNotFoundError:
        return _build(home, spec, interp, key, progress or _stderr, compile_later)
    _touch(home, key, marker, st.st_mtime)
    return _built(home, key, spec, interp)


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


# -- building -------------------------------------------------------------------------


def _record(home: Home, key: str, interp: Interpreter, spec: ImageSpec, state: str,
            size: int | None = None) -> None:
    from ... import store  # the store (sqlite3), only when a build is recorded

    now = time.time()
    conn = store.connection(home)
    with store.transaction(conn):
        conn.execute(
            "INSERT INTO images (key, python, requirements, state, size, created_at, last_used) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "python = excluded.python, requirements = excluded.requirements, "
            "state = excluded.state, size = excluded.size, created_at = excluded.created_at, "
            "last_used = excluded.last_used",
            (key, interp.version, json.dumps(list(spec.requirements)), state, size, now, now),
        )


def find_uv() -> str | None:
    """The uv binary, or None (then pip is used). ``LOCALTAILR_INSTALLER=pip`` forces pip."""
    if settings.INSTALLER.text() == "pip":
        return None
    beside = os.path.join(os.path.dirname(sys.executable), "uv")
    if os.access(beside, os.X_OK):  # the uv wheel's binary in this environment's bin: what
        return beside  # find_uv_bin finds first, without its sysconfig look-ups (~0.7 ms)
    try:
        from uv import find_uv_bin  # optional: the uv wheel may be absent (pip is used then)

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        import shutil  # only without the uv wheel

        return shutil.which("uv")


_network: list[bool] = []


def network_available(timeout: float = 1.5) -> bool:
    """Whether the package index answers (asked once per process)."""
    if _network:
        return _network[0]
    index = os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL") or ""
    host = re.sub(r"^[a-z+]+://([^/:@]*@)?([^/:]+).*$", r"\2", index) if index else "pypi.org"
    if index.startswith("file:"):
        _network.append(True)
        return True
    import threading  # only when asked whether there is a network (not when offline is set)

    result: list[bool] = [False]

    def probe() -> None:
        import socket  # only when asked whether there is a network (not when offline is set)

        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result[0] = True
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    _network.append(result[0])
    return result[0]


def offline_mode() -> bool:
    """True when installs must not use the network: ``LOCALTAILR_OFFLINE=1``, or no network
    (``LOCALTAILR_OFFLINE=0`` forces online)."""
    forced = settings.OFFLINE.flag()
    return forced if forced is not None else not network_available()


class _Builder:
    def __init__(self, home: Home, spec: ImageSpec, interp: Interpreter, key: str,
                 progress: Progress):
        self.home, self.spec, self.interp, self.key = home, spec, interp, key
        self.progress = progress
        self.size = 0
        self.compile_later = False  # the bytecode compiled after the move, detached
        self.deferred = False  # ... and there is bytecode to compile so
        self.compiler: bytecode.DetachedCompiler | None = None  # ... by this process
        self.tmp = home.venvs / f".tmp-{key}-{os.getpid()}"
        self.final = home.venvs / key
        self.log_path = home.venvs / f".tmp-{key}-{os.getpid()}.log"
        self.log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115
        self.env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
        for name in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "CONDA_PREFIX"):
            self.env.pop(name, None)

    def say(self, line: str) -> None:
        self.log.write(f"== {line}\n")
        self.log.flush()
        self.progress(f"image {self.key}: {line}")

    def run(self, argv: list[str], what: str, *, shell: bool = False,
            env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        import subprocess  # RUN lines and pip only: uv is started without it (see child)

        self.log.write("$ " + (argv[0] if shell else " ".join(argv)) + "\n")
        self.log.flush()
        start = self.log.tell()
        proc = subprocess.run(
            argv[0] if shell else argv, shell=shell, env=dict(env or self.env),
            cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            executable="/bin/sh" if shell else None,
        )
        self.log.flush()
        if proc.returncode != 0:
            raise self.failure(what, proc.returncode, self.output_since(start))

    def output_since(self, start: int) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            f.seek(start)
            return f.read()

    def failure(self, what: str, code: int, output: str) -> ImageBuildError:
        missing = sorted(set(
            re.findall(r"Because ([A-Za-z0-9_.\-\[\]]+) was not found in the", output)
            + re.findall(r"No matching distribution found for ([^\s]+)", output)
            + re.findall(r"([A-Za-z0-9_.\-]+) was not found in the (?:cache|package registry|"
                         r"provided package locations)", output)
        ))
        if missing:
            where = []
            if self.wheelhouse:
                where.append(f"the wheelhouse {self.wheelhouse}")
            where.append("the package cache" if self.offline else "the package index")
            mode = " (offline)" if self.offline else ""
            message = (f"image {self.key}: package {', '.join(missing)} is not available{mode}: "
                       f"not found in {' or '.join(where)}")
        else:
            tail = "\n".join(output.strip().splitlines()[-15:])
            message = f"image {self.key}: {what} failed (exit code {code}):\n{tail}"
        return ImageBuildError(message, self.key, self.home.venvs / f"failed-{self.key}.log")

    # the steps

    def build(self, started: Callable[[], None]) -> BuiltImage:
        """Build into the temporary folder and rename it into place; ``started`` is called
        once the build is under way (to record it), while uv installs when it can."""
        started_at = time.monotonic()
        spec, interp = self.spec, self.interp
        self.uv = find_uv()
        self.wheelhouse = settings.WHEELHOUSE.text() or None
        self.offline = bool(spec.requirements) and offline_mode()
        if interp.warning:
            self.say(f"WARNING: {interp.warning}")
        self.say(f"creating environment (Python {interp.version}, {interp.path}) with "
                 f"{'uv' if self.uv else 'pip'}")
        # With uv and nothing to run before the install, uv starts as soon as the folders
        # exist and the rest (the .pth file, the store record) is done while it installs.
        early = bool(self.uv and spec.requirements and not spec.build_script_pre.instructions)
        if not early:
            started()
        self.create_venv()
        python = self.tmp / "bin" / "python"
        installing = None
        if early:
            installing = self.start_uv()
            try:
                started()
                self.write_pth()
                if self.compile_later and self.compile_here():  # forked while uv works
                    self.compiler = bytecode.DetachedCompiler.start()
            except BaseException:
                child.stop(installing[0])  # before the folder it installs into is removed
                raise
        else:
            self.write_pth()
        env = {**self.env, "VIRTUAL_ENV": str(self.tmp),
               "PATH": f"{self.tmp / 'bin'}{os.pathsep}{self.env.get('PATH', '')}"}
        env_so_far: dict[str, str] = {}
        for ins in spec.build_script_pre.instructions:
            env_so_far = self.apply(ins, env, env_so_far)
        if installing is not None:
            self.finish_uv(installing)
        elif spec.requirements:
            self.install(python)
        for ins in spec.build_script_post.instructions:
            env_so_far = self.apply(ins, env, env_so_far)
        self.relocate()
        self.size = _folder_size(self.tmp)
        (self.tmp / MARKER).write_text(json.dumps({
            "key": self.key,
            "python": interp.version,
            "interpreter": interp.path,
            "python_version": spec.python_version,
            "requirements": list(spec.requirements),
            "env": spec.env,
            "warnings": [interp.warning] if interp.warning else [],
            "size": self.size,
            "created_at": time.time(),
        }, indent=1))
        if self.deferred:
            self.log.write("Bytecode compiled by a detached process once in place\n")
        self.say(f"ready in {time.monotonic() - started_at:.1f} s ({self.size / 1e6:.1f} MB)")
        self.log.close()
        os.replace(self.log_path, self.tmp / LOG_NAME)
        os.rename(self.tmp, self.final)
        if self.deferred:
            site = str(layout.site_packages(self.final, interp.version))
            compiler = self.compiler or bytecode.DetachedCompiler.start()
            self.compiler = None
            if compiler is not None:
                compiler.compile(site)
            else:
                bytecode.compile_tree(site)  # no process for it: here, before returning
        return _built(self.home, self.key, spec, interp)

    def apply(self, ins, env: dict[str, str], so_far: dict[str, str]) -> dict[str, str]:
        from ...core.buildscript import expand  # only for images with ENV lines

        if ins.kind == "ENV":
            out = dict(so_far)
            for name, value in ins.env:
                out[name] = expand(value, {**env, **out})
            return out
        self.say(f"RUN {ins.command} (line {ins.line})")
        self.run([ins.command], f"RUN {ins.command!r} (line {ins.line})", shell=True,
                 env={**env, **so_far}, cwd=self.tmp)
        return so_far

    def create_venv(self) -> None:
        if self.uv:
            # Written here rather than by `uv venv`: one process fewer, and the install
            # below (--prefix) needs no interpreter of the new environment started.
            layout.write_venv(self.tmp, self.interp.path, self.interp.version, self.key)
            self.log.write(f"environment written at {self.tmp} (Python {self.interp.version}, "
                           f"{self.interp.path})\n")
            return
        # Without uv: virtualenv (seeds pip from its own bundled wheels, so it works offline).
        self.run([sys.executable, "-m", "virtualenv", "--quiet", "--no-periodic-update",
                  "--python", self.interp.path, str(self.tmp)], "creating the environment")

    def compile_here(self) -> bool:
        """Whether bytecode is compiled in this process (the environment's interpreter is
        this one: same bytecode and cache tag) rather than by the installer, which would
        start the environment's interpreter for it."""
        return self.interp.path == current_interpreter_path()

    def start_uv(self) -> tuple[int, int]:
        """Start ``uv pip install`` into the environment; (its pid, where its output starts
        in the log). Until ``finish_uv``, nothing else is written to the log."""
        self.say(f"installing {', '.join(self.spec.requirements)}"
                 + (" (offline)" if self.offline else ""))
        assert self.uv is not None
        # Into the environment as a prefix, described by its base interpreter (which uv
        # has cached): asking the environment's own interpreter would start it.
        argv = [self.uv, "pip", "install", "--no-config",
                *([] if self.compile_here() else ["--compile-bytecode"]),
                "--python", self.interp.path, "--prefix", str(self.tmp),
                *(["--find-links", self.wheelhouse] if self.wheelhouse else []),
                *(["--offline"] if self.offline else []), *self.spec.requirements]
        self.log.write("$ " + " ".join(argv) + "\n")
        self.log.flush()
        start = self.log.tell()
        env = self.env
        if self.offline:  # no connection made: no certificates to read (~6 ms of uv's time
            # when SSL_CERT_FILE names a system bundle, which uv parses before anything else)
            env = {k: v for k, v in env.items() if k not in TLS_ENV}
        try:
            pid = child.spawn(argv, env, self.log.fileno())
        except OSError as exc:
            raise self.failure("installing requirements", 127,
                               f"cannot start {self.uv}: {exc}") from exc
        return pid, start

    def finish_uv(self, installing: tuple[int, int]) -> None:
        """Wait for the install ``start_uv`` began; then point its scripts at the final
        folder's interpreter and compile its bytecode (in this process when it can)."""
        pid, start = installing
        code = child.wait(pid)
        if code != 0:
            raise self.failure("installing requirements", code, self.output_since(start))
        layout.fix_shebangs(self.tmp / "bin", self.interp.path,
                            str(self.final / "bin" / "python"))
        if self.compile_here():
            self.compile_bytecode()

    def install(self, python: Path) -> None:
        if self.uv:
            self.finish_uv(self.start_uv())
            return
        self.say(f"installing {', '.join(self.spec.requirements)}"
                 + (" (offline)" if self.offline else ""))
        links = ["--find-links", self.wheelhouse] if self.wheelhouse else []
        if not _has_pip(str(python)):
            self.run([str(python), "-m", "ensurepip", "--default-pip"], "installing pip")
        # Bytecode compiled as with uv: in this process when the interpreter is this one,
        # else by pip (in the environment's interpreter).
        here = self.compile_here()
        argv = [str(python), "-m", "pip", "install", "--no-input",
                "--disable-pip-version-check", *(["--no-compile"] if here else []), *links]
        if self.offline:
            argv.append("--no-index")
        self.run(argv + list(self.spec.requirements), "installing requirements")
        if here:
            self.compile_bytecode()

    def compile_bytecode(self) -> None:
        """Compile every module in site-packages, as ``uv pip install --compile-bytecode``
        does, in this process (same interpreter, so the same bytecode and cache tag), or
        with ``compile_later`` once the environment is in place."""
        if self.compile_later:
            self.deferred = True
            return
        started = time.monotonic()
        count = bytecode.compile_tree(str(_site_packages(self.tmp)))
        self.log.write(f"Bytecode compiled {count} files in "
                       f"{(time.monotonic() - started) * 1e3:.0f}ms (in-process)\n")
        self.log.flush()

    def write_pth(self) -> None:
        site = _site_packages(self.tmp)
        lines = []
        host = host_paths()
        src = source_folder()
        if not any(src == p for p in host[1:]):
            lines.append(src)
        # plain folders, not site.addsitedir: the host's own .pth files (an editable
        # install's finder, setuptools' distutils hack) would run at every job's start
        lines += host[1:]
        (site / PTH_NAME).write_text("\n".join(lines) + "\n")

    def relocate(self) -> None:
        """Point scripts written during the build at the final folder."""
        old, new = str(self.tmp).encode(), str(self.final).encode()
        for entry in (self.tmp / "bin").iterdir():
            if entry.is_symlink() or not entry.is_file():
                continue
            try:
                data = entry.read_bytes()
            except OSError:
                continue
            if old in data and b"\0" not in data[:4096]:
                entry.write_bytes(data.replace(old, new))
        cfg = self.tmp / "pyvenv.cfg"
        if cfg.exists():
            data = cfg.read_bytes()
            if old in data:
                cfg.write_bytes(data.replace(old, new))

    def fail(self, exc: BaseException) -> None:
        if self.compiler is not None:
            self.compiler.cancel()
        if not self.log.closed:
            self.log.write(f"== FAILED: {exc}\n")
            self.log.close()
        failed = self.home.venvs / f"failed-{self.key}.log"
        try:
            os.replace(self.log_path, failed)
        except OSError:
            pass
        import shutil  # only after a failed build

        shutil.rmtree(self.tmp, ignore_errors=True)


def _has_pip(python: str) -> bool:
    if python == sys.executable:
        import importlib.util  # only to ask about this interpreter

        return importlib.util.find_spec("pip") is not None
    return False


def _site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python*/site-packages"))
    if not found:
        raise RuntimeError(f"no site-packages folder in {venv}")
    return found[0]


def _folder_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _build(home: Home, spec: ImageSpec, interp: Interpreter, key: str,
           progress: Progress, compile_later: bool = False) -> BuiltImage:
    home.ensure()
    lock = _lock(home, key)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        progress(f"image {key}: waiting for another process building it")
        lock.acquire(timeout=LOCK_WAIT)
    try:
        if _marker(home, key).exists():
            return _built(home, key, spec, interp)
        for stale in home.venvs.glob(f".tmp-{key}-*"):
            import shutil  # only for leftovers of a killed build

            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        if (home.venvs / key).exists():
            import shutil  # only for a folder without its marker (a build killed mid-rename)

            shutil.rmtree(home.venvs / key)
        builder = _Builder(home, spec, interp, key, progress)
        builder.compile_later = compile_later
        try:
            built = builder.build(lambda: _record(home, key, interp, spec, "building"))
        except BaseException as exc:
            builder.fail(exc)
            try:
                _record(home, key, interp, spec, "failed")
            except Exception:  # noqa: BLE001 (keep the build error, not a store error)
                pass
            if isinstance(exc, ImageBuildError):
                progress(f"image {key}: build failed; log: {exc.log_path}")
            raise
        (home.venvs / f"failed-{key}.log").unlink(missing_ok=True)
        _record(home, key, interp, spec, "ready", builder.size)
        return built
    finally:
        lock.release()


