"""Images against their floor, as ratios measured in one run.

- ``bench_cache_hit``: resolving an image to a ready environment (a cache hit) against
  ``python -c pass``. Target: <= 0.1x.
- ``bench_cold_build``: building an environment with one small package from the local
  wheel cache (uv) against ``python -m venv`` + ``pip install`` of the same. Target: >= 5x
  faster.
- ``bench_script_run``: running a script whose header environment is cached against
  ``python script.py``. Target: <= 1.5x.

Run: ``.venv/bin/python bench/bench_images.py`` (uses ``LOCALTAILR_WHEELHOUSE``, default
``./wheelhouse``, offline).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from localtailr.core.home import Home
from localtailr.core.image_spec import ImageSpec
from localtailr.runtime.images.cache import ensure_image
from localtailr.runtime.process.script_run import run_script

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "six"


def _wheelhouse() -> str:
    path = os.environ.get("LOCALTAILR_WHEELHOUSE") or str(ROOT / "wheelhouse")
    os.environ["LOCALTAILR_WHEELHOUSE"] = path
    os.environ.setdefault("LOCALTAILR_OFFLINE", "1")
    return path


def _median_run(argv: list[str], repeat: int, **kwargs) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _quiet(_line: str) -> None:
    pass


def bench_cache_hit(repeat: int = 2000) -> dict:
    """Seconds per cache hit (prepared spec; and from raw arguments) vs ``python -c pass``."""
    _wheelhouse()
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home")
        spec = ImageSpec.make(python_requirements=PACKAGE)
        ensure_image(home, spec, progress=_quiet)
        start = time.perf_counter()
        for _ in range(repeat):
            ensure_image(home, spec)
        hit = (time.perf_counter() - start) / repeat
        start = time.perf_counter()
        for _ in range(repeat // 10):
            ensure_image(home, ImageSpec.make(python_requirements=PACKAGE))
        hit_raw = (time.perf_counter() - start) / (repeat // 10)
    floor = _median_run([sys.executable, "-c", "pass"], 15)
    out = {"hit_s": hit, "hit_from_arguments_s": hit_raw, "python_c_pass_s": floor,
           "ratio": hit / floor, "ratio_from_arguments": hit_raw / floor, "target": 0.1}
    print(f"image cache hit: {hit * 1e6:.0f} us ({hit_raw * 1e6:.0f} us from arguments) vs "
          f"python -c pass {floor * 1e3:.1f} ms: {out['ratio']:.4f}x "
          f"({out['ratio_from_arguments']:.4f}x) (target <= 0.1x)")
    return out


def bench_cold_build(repeat: int = 3) -> dict:
    """Seconds for a cold build of one small package: localtailr (uv) vs venv + pip."""
    wheelhouse = _wheelhouse()
    ours, theirs = [], []
    for i in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            home = Home(Path(tmp) / "home")
            spec = ImageSpec.make(python_requirements=PACKAGE, build_script_post=f"ENV N={i}")
            start = time.perf_counter()
            ensure_image(home, spec, progress=_quiet)
            ours.append(time.perf_counter() - start)
            venv = Path(tmp) / "plain"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-index",
                            "--disable-pip-version-check", "--find-links", wheelhouse, PACKAGE],
                           check=True)
            theirs.append(time.perf_counter() - start)
            shutil.rmtree(venv, ignore_errors=True)
    a, b = statistics.median(ours), statistics.median(theirs)
    out = {"localtailr_s": a, "venv_pip_s": b, "speedup": b / a, "target": 5.0}
    print(f"cold build ({PACKAGE}): localtailr {a:.2f} s vs python -m venv + pip {b:.2f} s: "
          f"{out['speedup']:.1f}x faster (target >= 5x)")
    return out


SCRIPT = f"# requirements: {PACKAGE}\nimport {PACKAGE}\n"


def bench_script_run(repeat: int = 15) -> dict:
    """Seconds to run a script with a cached header environment vs ``python script.py``."""
    _wheelhouse()
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home")
        script = Path(tmp) / "script.py"
        script.write_text(SCRIPT)
        run_script(home, script, {}, None, stream=False, progress=_quiet)  # build once
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            run_script(home, script, {}, None, stream=False, progress=_quiet)
            times.append(time.perf_counter() - start)
        ours = statistics.median(times)
        # the floor: the same script, same interpreter and packages, started directly
        venv_python = ensure_image(home, ImageSpec.make(python_requirements=PACKAGE)).python
        floor = _median_run([venv_python, str(script)], repeat)
        out = {"run_script_s": ours, "python_script_s": floor, "ratio": ours / floor,
               "target": 1.5}
        cli = Path(sys.executable).with_name("localtailr")
        if cli.exists():
            env = {**os.environ, "LOCALTAILR_HOME": str(home.root)}
            try:
                subprocess.run([str(cli), "run", str(script)], check=True, env=env,
                               capture_output=True, timeout=120)
                whole = _median_run([str(cli), "run", str(script)], repeat, env=env,
                                    stderr=subprocess.DEVNULL)
                out["cli_s"] = whole
                out["cli_ratio"] = whole / floor
            except (subprocess.SubprocessError, OSError):
                pass
    line = (f"script run, cached env: run_script {ours * 1e3:.1f} ms vs python script.py "
            f"{floor * 1e3:.1f} ms: {out['ratio']:.2f}x")
    if "cli_s" in out:
        line += f"; `localtailr run` {out['cli_s'] * 1e3:.1f} ms: {out['cli_ratio']:.2f}x"
    print(line + " (target <= 1.5x)")
    return out


def main() -> dict:
    return {
        "cache_hit": bench_cache_hit(),
        "cold_build": bench_cold_build(),
        "script_run": bench_script_run(),
    }


if __name__ == "__main__":
    main()


def run() -> list[dict]:
    """The issue's three image figures, as rows for ``make bench``."""
    from bench import row

    hit = bench_cache_hit()
    cold = bench_cold_build()
    script = bench_script_run()
    rows = [
        row("image cache hit", hit["hit_s"] * 1e3, "ms", hit["python_c_pass_s"] * 1e3,
            "python -c pass", target="<= 0.1x", ok=hit["ratio"] <= 0.1,
            note=f"from raw arguments {hit['hit_from_arguments_s'] * 1e3:.3f} ms"),
        row(f"cold build of {PACKAGE} (speed-up)", cold["localtailr_s"], "s", cold["venv_pip_s"],
            "python -m venv + pip", ratio=cold["speedup"], target=">= 5x",
            ok=cold["speedup"] >= 5),
    ]
    if "cli_s" in script:
        rows.append(row("`localtailr run` script vs the bare interpreter", script["cli_s"] * 1e3, "ms",
                        script["python_script_s"] * 1e3, "python script.py",
                        target="<= 1.5x", ok=script["cli_ratio"] <= 1.5,
                        note=f"in-process run_script: {script['ratio']:.2f}x"))
    return rows + bench_vs_uv()


# --- against `uv run --script`, and the CLI's own start -----------------------------------


def _script(folder: Path, name: str, spec: str) -> Path:
    path = folder / name
    path.write_text(f'# /// script\n# dependencies = ["{spec}"]\n# ///\nimport {PACKAGE}\n')
    return path


def _timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def bench_vs_uv(rounds: int = 9, cold_rounds: int = 3) -> list[dict]:
    """``localtailr run`` and ``uv run --script`` on the same PEP 723 script: with its
    environment cached, and with a requirement set neither has seen (a new environment from
    the package cache). Both offline, from the same wheelhouse, on the same interpreter."""
    from bench import interleave, row

    wheelhouse = _wheelhouse()
    cli = Path(sys.executable).with_name("localtailr")
    uv = Path(sys.executable).with_name("uv")
    base = getattr(sys, "_base_executable", sys.executable)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {**os.environ, "LOCALTAILR_HOME": str(folder / "home"), "LOCALTAILR_OFFLINE": "1",
               "UV_OFFLINE": "1", "UV_PYTHON": base, "UV_FIND_LINKS": wheelhouse,
               "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"}
        ours = lambda script: [str(cli), "run", str(script)]
        theirs = lambda script: [str(uv), "run", "--quiet", "--script", str(script)]
        cached = _script(folder, "cached.py", PACKAGE)
        _timed(ours(cached), env)  # each builds its environment once
        _timed(theirs(cached), env)
        hot = interleave([lambda: _timed(ours(cached), env), lambda: _timed(theirs(cached), env)],
                         rounds)
        # uv keeps script environments across runs (~/.cache/uv/environments-v2): a requirement
        # set unique to this run, else uv's "cold" rounds are hits of an earlier bench's
        counter = iter(range(time.time_ns() // 1000 % 10**12, 10**13))

        def cold(argv_of):  # a requirement set never seen: a new environment
            n = next(counter)
            return _timed(argv_of(_script(folder, f"cold-{n}.py", f"{PACKAGE}!=0.{n}")), env)

        colds = interleave([lambda: cold(ours), lambda: cold(theirs)], cold_rounds)
        kv_env = {**env, "LOCALTAILR_HOME": str(folder / "kv-home")}
        subprocess.run([str(cli), "kv", "put", "bench", "value"], check=True, env=kv_env,
                       stdout=subprocess.DEVNULL)
        starts = interleave([lambda: _timed([str(cli), "kv", "get", "bench"], kv_env),
                             lambda: _timed([sys.executable, "-c", "pass"], kv_env)], 21)
    med = statistics.median
    ms = lambda xs: [x * 1e3 for x in xs]
    return [
        row("`localtailr run` script, cached env", None, "ms", None, "uv run --script",
            target="<= 1.2x", ok=med(hot[0]) <= 1.2 * med(hot[1]), samples=ms(hot[0]),
            floor_samples=ms(hot[1]), note=f"PEP 723 script needing {PACKAGE}; offline, same wheelhouse"),
        row("`localtailr run` script, new requirement set", None, "ms", None, "uv run --script",
            target="<= 1.5x", ok=med(colds[0]) <= 1.5 * med(colds[1]), samples=ms(colds[0]),
            floor_samples=ms(colds[1]), note="a new environment from the package cache each round (a requirement set unique to"
            " this run: uv keeps script environments across runs). uv starts (posix_spawn, no"
            " subprocess) as soon as the folders exist, ~4 ms after the cached run's look-up"
            " (image_spec and the cache imported without typing, the header parsed without"
            " tomllib, the key, lock and layout), offline without SSL_CERT_FILE (uv parses a"
            " named bundle first: ~6 ms); while it installs (~11 ms) the store record and .pth"
            " are written and a detached compiler is forked; after it ~2 ms (marker, rename,"
            " record, alias) and the bytecode is compiled while the script's interpreter"
            " starts. Out of reach as built: CPU per run ~65 ms against uv's ~37 (main ~90):"
            " our interpreter and its imports (~25 ms, as a cached run), a second process for"
            " uv (~13 ms) and the script (~14 ms) come to ~1.4x uv's whole run before any cold"
            " work of ours, and the overlaps only pay when a core is free"),
        row("CLI start: `localtailr kv get`", None, "ms", None, "python -c pass",
            target="<= 1.5x", ok=med(starts[0]) <= 1.5 * med(starts[1]), samples=ms(starts[0]),
            floor_samples=ms(starts[1]), note="the whole command, interpreter start included, no daemon; kv get reads the"
            " key through platform.kv_quick (no click, store, pathlib or sqlite3 package): what"
            " is left over a bare interpreter is mostly importing _sqlite3 (~2.5 ms, with"
            " functools, which it imports) and opening the database"),
    ]
