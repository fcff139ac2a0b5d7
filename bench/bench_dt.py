"""The genuine datatailr SDK through localtailr's ``dt``, in a temporary home.

- ``dt kv get through the SDK``: ``KV().get(key)`` of the unmodified SDK (one ``dt``
  process a call, as the SDK always does), against the same SDK calling a ``dt`` that is a
  bare ``python -c pass`` (the floor of its subprocess design), same interpreter; with the
  daemon running (``dt`` hands calls to it), and without (for information).
- ``5-task workflow through the SDK``: a chain of five tasks deployed with the SDK's
  ``@workflow`` and watched through ``dt job runs`` until it completes, against the same
  chain through localtailr's own ``@workflow`` and ``wait()``; both warm (images built).
  A last, untimed round counts the ``dt`` calls the SDK makes (a counting ``dt`` first on
  PATH, for the deploying process and the tasks alike): those on the chain's path (deploy,
  inside the tasks, the last poll) times the floor of one call (the SDK calling a
  bare-python ``dt``, measured here too) is what the SDK's design costs before any work.

Run: ``.venv/bin/python -m bench dt``.
"""

from __future__ import annotations

import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELHOUSE = Path(os.environ.get("LOCALTAILR_WHEELHOUSE") or ROOT / "wheelhouse")
CALLS, ROUNDS = 20, 5

SDK_GETS = textwrap.dedent(f"""
    import json, time
    from datatailr import KV
    kv = KV()
    kv.get("answer")
    times = []
    for _ in range({CALLS}):
        t = time.perf_counter()
        kv.get("answer")
        times.append(time.perf_counter() - t)
    print(json.dumps(sorted(times)[len(times) // 2]))
""")

SDK_TASKS = textwrap.dedent("""
    from datatailr import task

    @task()
    def step(x=0):
        return x + 1
""")

SDK_CHAIN = textwrap.dedent("""
    import json, sys, time
    from datatailr import Workflow, workflow
    from sdk_chain.tasks import step

    @workflow(name=sys.argv[1])
    def chain():
        x = step()
        for _ in range(4):
            x = step(x)

    t = time.perf_counter()
    chain()
    wf = Workflow(name=sys.argv[1], get_existing=True)
    while True:
        runs = wf.runs(refresh=True)
        if runs and runs[-1]["state"] in ("completed", "failed"):
            break
        time.sleep(0.05)
    print(json.dumps([time.perf_counter() - t, runs[-1]["state"]]))
""")

OWN_CHAIN = textwrap.dedent("""
    from localtailr import task, workflow

    @task()
    def step(x=0):
        return x + 1

    def make(name):
        @workflow(name=name)
        def chain():
            x = step()
            for _ in range(4):
                x = step(x)
        return chain
""")


def _row(*args, **kwargs) -> dict:
    try:
        from bench import row
    except ImportError:  # run as a script
        sys.path.insert(0, str(ROOT))
        from bench import row
    return row(*args, **kwargs)


def _sdk_venv(folder: Path) -> Path:
    venv = folder / "sdk"
    uv = Path(sys.executable).with_name("uv")
    subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([str(uv), "pip", "install", "-q", "--offline", "--no-index", "--find-links",
                    str(WHEELHOUSE), "--python", str(venv / "bin" / "python"),
                    "--compile-bytecode", "datatailr==0.2.3"], check=True)  # as pip does
    return venv


def _env(folder: Path, venv: Path, bin_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATATAILR_", "VIRTUAL_ENV"))}
    env.update(LOCALTAILR_HOME=str(folder / "home"), HOME=str(folder / "user-home"),
               PATH=f"{bin_dir}{os.pathsep}{venv / 'bin'}{os.pathsep}{env['PATH']}",
               LOCALTAILR_WHEELHOUSE=str(WHEELHOUSE), NO_COLOR="1")
    return env


def _sdk(venv: Path, env: dict, code: str, *args: str, cwd: Path | None = None):
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code, *args], capture_output=True,
                         text=True, env=env, cwd=cwd, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-1500:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _dt_folders(folder: Path) -> tuple[Path, Path]:
    ours, floor = folder / "dt-ours", folder / "dt-floor"
    if not ours.exists():
        ours.mkdir()
        floor.mkdir()
        (ours / "dt").symlink_to(Path(sys.executable).with_name("dt"))
        (floor / "dt").write_text(f"#!{sys.executable}\n# datatailr._remote_client.remote_cli\n")
        (floor / "dt").chmod(0o755)
    return ours, floor


COUNTING_DT = """#!{python}
# datatailr._remote_client.remote_cli: the SDK uses a dt whose text holds this
import os, sys
with open({log!r}, "a") as f:
    f.write((os.environ.get("LOCALTAILR_RUN_ID") or "-") + " " + " ".join(sys.argv[1:3]) + "\\n")
os.execv({dt!r}, [{dt!r}, *sys.argv[1:]])
"""


def _count_calls(folder: Path, venv: Path, project: Path) -> tuple[int, int]:
    """(calls of the deploying process up to ``job start``, calls inside the tasks) of one
    chain, counted by a ``dt`` that logs and hands over (the daemon restarted with it first
    on PATH, so that the jobs it saves call it too)."""
    from localtailr.core.home import Home
    from localtailr.runtime.daemon import control

    counting, log = folder / "dt-counting", folder / "dt-calls.log"
    counting.mkdir(exist_ok=True)
    real = Path(sys.executable).with_name("dt")
    (counting / "dt").write_text(COUNTING_DT.format(python=sys.executable, log=str(log),
                                                    dt=str(real)))
    (counting / "dt").chmod(0o755)
    old_path = os.environ["PATH"]
    os.environ["PATH"] = f"{counting}{os.pathsep}{old_path}"
    try:
        control.stop(Home(folder / "home"))
        control.ensure_running(Home(folder / "home"), quiet=True)
        _sdk(venv, _env(folder, venv, counting), SDK_CHAIN, "sdk counted", cwd=project)
    finally:
        os.environ["PATH"] = old_path
        control.stop(Home(folder / "home"))
    calls = [line.split(" ", 1) for line in log.read_text().splitlines()]
    deploy = next((i for i, (run, argv) in enumerate(calls) if run == "-" and argv == "job start"),
                  None)
    if deploy is None:
        raise RuntimeError(f"no `dt job start` among the SDK's calls: {calls[:20]}")
    deploy_calls = sum(1 for run, _ in calls[:deploy + 1] if run == "-")
    return deploy_calls, sum(1 for run, _ in calls if run != "-")


def bench_kv_get(folder: Path, venv: Path, daemon: bool) -> dict:
    from localtailr.core.home import Home
    from localtailr.runtime.daemon import control

    ours, floor = _dt_folders(folder)
    env_ours, env_floor = _env(folder, venv, ours), _env(folder, venv, floor)
    subprocess.run([str(ours / "dt"), "kv", "put", "answer", "42"], env=env_ours, check=True)
    if daemon:
        control.ensure_running(Home(folder / "home"), quiet=True)
    else:
        control.stop(Home(folder / "home"))
    a, b = [], []
    for i in range(ROUNDS):
        first, second = (a, b) if i % 2 == 0 else (b, a)
        env1, env2 = (env_ours, env_floor) if i % 2 == 0 else (env_floor, env_ours)
        first.append(_sdk(venv, env1, SDK_GETS))
        second.append(_sdk(venv, env2, SDK_GETS))
    value, base = statistics.median(a) * 1000, statistics.median(b) * 1000
    if daemon:
        return _row("dt kv get through the SDK", value, "ms", base, "SDK calling a bare python dt",
                    target="<= 1.5x", ok=value <= 1.5 * base,
                    note=f"daemon running (dt hands the call to it over <home>/dt.sock); "
                         f"median of {ROUNDS} x {CALLS} calls, one dt process a call")
    return _row("dt kv get through the SDK, no daemon", value, "ms", base,
                "SDK calling a bare python dt",
                note="no daemon: each dt process reads the key itself (platform.kv_quick: _sqlite3"
                     " and the home's folder rules, not the dt face or the store)")


def bench_workflow(folder: Path, venv: Path) -> dict:
    import importlib

    bin_dir, _floor = _dt_folders(folder)
    env = _env(folder, venv, bin_dir)
    project = folder / "proj"
    (project / "sdk_chain").mkdir(parents=True)
    (project / "sdk_chain" / "__init__.py").write_text("")
    (project / "sdk_chain" / "tasks.py").write_text(SDK_TASKS)
    (project / "chain.py").write_text(SDK_CHAIN)
    (folder / "own_chain.py").write_text(OWN_CHAIN)
    sys.path.insert(0, str(folder))
    os.environ["LOCALTAILR_HOME"] = str(folder / "home")
    try:
        own = importlib.import_module("own_chain")
        own.make("own warm")().wait(900)  # builds localtailr's image
        _sdk(venv, env, (project / "chain.py").read_text(), "sdk warm", cwd=project)  # and the SDK's
        sdk_times, own_times, states = [], [], []
        for i in range(3):
            t = time.perf_counter()
            states.append(own.make(f"own {i}")().wait(900))
            own_times.append(time.perf_counter() - t)
            wall, state = _sdk(venv, env, (project / "chain.py").read_text(), f"sdk {i}",
                               cwd=project)
            sdk_times.append(wall)
            states.append(state)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("own_chain", None)
    value, base = statistics.median(sdk_times), statistics.median(own_times)
    _ours, floor_dir = _dt_folders(folder)
    per_call = statistics.median(_sdk(venv, _env(folder, venv, floor_dir), SDK_GETS)
                                 for _ in range(3))
    deploy_calls, task_calls = _count_calls(folder, venv, project)
    path_calls = deploy_calls + task_calls + 1  # + the poll that sees the run completed
    design = path_calls * per_call
    ok = value <= 2 * base and set(states) <= {"succeeded", "completed"}
    return _row("5-task workflow through the SDK", value, "s", base, "localtailr's @workflow",
                target="<= 2x", ok=ok,
                note=f"a chain of 5, warm, median of 3; {sorted(set(states))}; the SDK makes "
                     f"{path_calls} dt calls on the chain's path ({deploy_calls} to deploy, "
                     f"{task_calls} in the tasks, the last poll) x {per_call * 1000:.1f} ms "
                     f"(one call to a bare-python dt) = {design:.2f} s = {design / base:.1f}x "
                     f"before any work: <= 2x is out of reach by the SDK's design")


def run() -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="localtailr-bench-dt-"))
    old_home = os.environ.get("LOCALTAILR_HOME")
    rows = []
    compileall.compile_dir(str(ROOT / "localtailr"), quiet=1)  # as installed (and make bench)
    try:
        venv = _sdk_venv(folder)
        rows.append(bench_kv_get(folder, venv, daemon=True))
        rows.append(bench_kv_get(folder, venv, daemon=False))
        rows.append(bench_workflow(folder, venv))
    finally:
        try:
            from localtailr.core.home import Home
            from localtailr.runtime.daemon import control

            control.stop(Home(folder / "home"))
        except Exception:  # noqa: BLE001 - cleaning up
            pass
        if old_home is None:
            os.environ.pop("LOCALTAILR_HOME", None)
        else:
            os.environ["LOCALTAILR_HOME"] = old_home
        shutil.rmtree(folder, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
