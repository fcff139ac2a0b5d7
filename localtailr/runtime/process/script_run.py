"""``localtailr run script.py``: run a script the way DataMaker's workers do.

The script's header (``# requirements: ...`` or a PEP 723 ``# /// script`` block) is
resolved into a cached environment; the script runs in that environment's interpreter in
a fresh working folder under ``<home>/runs/``, with:

- ``localtailr.params`` (a dict) from ``--param k=v``: ``LOCALTAILR_PARAMS`` (JSON) and one
  ``LOCALTAILR_PARAM_K`` variable a parameter;
- the secrets named in a ``# secrets: NAME1, NAME2`` header as environment variables (and
  no others);
- ``LOCALTAILR_RUN_ID`` and ``LOCALTAILR_HOME``;
- its output streamed live and its exit code passed through.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ...core import env_text, settings
from ...core.home import Home
from ...core.image_key import KEY_FORMAT, current_interpreter_path, host_paths
from ...core.params import PARAM_PREFIX, param_env_name
from ...core.requirements import parse_script_header
from ...core.sha256 import sha256  # not hashlib: it loads OpenSSL first (~2 ms)
from ..images.built import BuiltImage, alias_lookup, alias_remember

# A cached run imports only what finding its environment takes: the image cache (the
# builder, its interpreter search, subprocess, the store) is imported on a miss.

PARAMS_ENV = settings.PARAMS.name
RUN_ID_ENV = settings.RUN_ID.name

SecretGetter = Callable[[str], str]
Progress = Callable[[str], None]


def secret_env_name(name: str) -> str:
    """The variable a secret is exposed as: its name, characters outside ``[A-Za-z0-9_]``
    replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


class ScriptLaunch:
    """Everything needed to start a script (for ``subprocess`` or ``os.execve``): ``argv``,
    ``env``, ``cwd``, ``run_id`` and ``image``. (A plain class, not a dataclass: see above.)"""

    __slots__ = ("argv", "env", "cwd", "run_id", "image")

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, run_id: str,
                 image: BuiltImage):
        self.argv, self.env, self.cwd, self.run_id, self.image = argv, env, cwd, run_id, image

    def __repr__(self) -> str:
        return (f"ScriptLaunch(argv={self.argv!r}, cwd={self.cwd!r}, run_id={self.run_id!r}, "
                f"image={self.image.key!r})")


def _image_for(home: Home, script: Path, source: str, progress: Progress | None) -> BuiltImage:
    raw = parse_script_header(source, check=False)
    alias = sha256(json.dumps(
        [KEY_FORMAT, raw.text, current_interpreter_path(), host_paths(),
         settings.STRICT_PYTHON.text()]
    ).encode()).hexdigest()[:32]
    built = alias_lookup(home, alias)
    if built is not None:
        return built
    from ...core.image_spec import ImageSpec  # the image builder, only on a cache miss
    from ..images.cache import ensure_image

    header = parse_script_header(source)
    spec = ImageSpec.make(
        python_version=header.requires_python or "auto",
        python_requirements=header.requirements,
        base_dir=script.parent,
    )
    built = ensure_image(home, spec, progress, compile_later=True)  # while the script starts
    alias_remember(home, alias, built.key)
    return built


def prepare_script(
    home: Home,
    path: str | os.PathLike,
    params: Mapping[str, str] | None = None,
    secret_getter: SecretGetter | None = None,
    *,
    args: Sequence[str] = (),
    run_dir: Path | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> ScriptLaunch:
    """Resolve the script's environment and compose its command line and variables.

    Raises:
        ValueError: if the script is missing, its header is malformed, or it names secrets
            and no ``secret_getter`` is given.
        ImageBuildError: if its environment cannot be built.
    """
    script = Path(path).expanduser().absolute()
    if not script.is_file():
        raise ValueError(f"script {str(path)!r} not found")
    source = script.read_text(encoding="utf-8", errors="replace")
    secrets = parse_script_header(source, check=False).secrets
    if secrets and secret_getter is None:
        raise ValueError(f"script {str(path)!r} names secrets ({', '.join(secrets)}) but no "
                         "secret store was given")
    params = dict(params or {})
    for key, value in params.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"parameter name {key!r} is not valid; accepted: a non-empty string")
        if not isinstance(value, str):
            params[key] = str(value)
        env_text.check_value(f"parameter name {key!r}", key)
        env_text.check_value(f"parameter {key}", params[key])
    image = _image_for(home, script, source, progress)
    run_id = run_id or (run_dir.name if run_dir is not None else f"script-{os.urandom(6).hex()}")
    if run_dir is None:
        home.ensure()
        run_dir = home.runs / run_id
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = image.environ()
    for name in [n for n in env if n.startswith(PARAM_PREFIX)]:
        del env[name]
    env[PARAMS_ENV] = json.dumps(params)
    for key, value in params.items():
        env[param_env_name(key)] = value
    env[RUN_ID_ENV] = run_id
    env["LOCALTAILR_HOME"] = str(home.root)
    env.pop("PYTHONPATH", None)
    if secret_getter is not None:  # else there are no secrets (checked above)
        for name in secrets:
            env[secret_env_name(name)] = secret_getter(name)
    return ScriptLaunch([image.python, str(script), *args], env, run_dir, run_id, image)


def run_script(
    home: Home,
    path: str | os.PathLike,
    params: Mapping[str, str] | None = None,
    secret_getter: SecretGetter | None = None,
    stream: bool = True,
    *,
    args: Sequence[str] = (),
    run_dir: Path | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> int:
    """Run a script in its header's cached environment; return its exit code.

    Args:
        home: the localtailr home.
        path: the script.
        params: run parameters (``--param k=v``).
        secret_getter: reads a secret by name (for the ``# secrets:`` header).
        stream: True to let the script write to this process's stdout/stderr; False to
            write them to ``stdout`` and ``stderr`` files in the run folder.
        args: extra command-line arguments for the script.
        run_dir: the run's working folder (default: a new ``<home>/runs/script-<id>``).
        run_id: the run id (default: the run folder's name).
        progress: receives build progress lines (default: stderr).

    Returns:
        The script's exit code (128 + N when killed by signal N).
    """
    import signal  # only to wait for a child: `localtailr run` replaces itself instead
    import subprocess

    launch = prepare_script(home, path, params, secret_getter, args=args, run_dir=run_dir,
                            run_id=run_id, progress=progress)
    if stream:
        out = err = None
    else:
        out = open(launch.cwd / "stdout", "wb")  # noqa: SIM115
        err = open(launch.cwd / "stderr", "wb")  # noqa: SIM115
    previous = signal.getsignal(signal.SIGINT) if _main_thread() else None
    try:
        proc = subprocess.Popen(launch.argv, env=launch.env, cwd=launch.cwd,
                                stdout=out, stderr=err)
        if previous is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child gets Ctrl-C and decides
        code = proc.wait()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        for f in (out, err):
            if f is not None:
                f.close()
    return 128 - code if code < 0 else code


def _main_thread() -> bool:
    import threading  # only to wait for a child (`localtailr run` execs instead)

    return threading.current_thread() is threading.main_thread() and sys.platform != "win32"
