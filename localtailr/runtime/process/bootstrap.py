"""What a job's process runs: import the entrypoint and call it the way its type needs.

Started by the supervisor as ``<image python> <this file> <run folder>`` (by path, so that
the ``localtailr`` package is not imported before user code: a warm start costs little
more than ``python -c pass``); ``python -m localtailr.runtime.process.bootstrap <run_id>`` works
too (the home from ``LOCALTAILR_HOME``). The supervisor writes ``launch.json`` in the run
folder first: the entrypoint (``module``, ``qualname``, ``sys_path``, ``file``, ``kind``),
the job type, the app framework and the port.

- batch and service: the entrypoint is called with no arguments.
- app: served the framework's usual way on ``PORT`` (127.0.0.1):
  streamlit and panel: ``streamlit run`` / ``panel serve`` (run in this process) a small
  script that calls the entrypoint (panel: a returned object is made servable), under the
  run's ``prefix`` on an internal port, with ``prefix_proxy`` on PORT serving it at ``/``
  and under the prefix;
  flask: an entrypoint that *is* or *returns* a Flask app is served by werkzeug; one that
  calls ``app.run()`` itself has host and port forced to 127.0.0.1:PORT; if it returns
  nothing, a Flask app named ``app`` in its module is served;
  fastapi (any ASGI app): the same rule, served by ``uvicorn.run``;
  dash: the same rule, served by ``app.run``.
- excel: the entrypoint and the other public functions defined in its module are served
  over HTTP: ``POST /call/<function>`` with a JSON list (positional arguments), object
  (keyword arguments) or ``{"args": [...], "kwargs": {...}}``; the answer is
  ``{"result": value}`` or ``{"error": message, "type": exception name}``.
  ``GET /functions`` lists them.
- a run of a workflow task (``task`` in launch.json) is handed to
  ``localtailr.runtime.workflows.task_runner.main(launch: dict) -> int``.

Failures are written to ``failure.json`` in the run folder (the supervisor turns it into
the run's reason) and end the process with code 1 (code 2: the entrypoint could not be
imported). The exit code of a process that ends normally is written to ``exit``.
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]  # run by path: this folder must not shadow user modules

import importlib  # noqa: E402
import json  # noqa: E402

TYPE_CHECKING = False  # not typing's: importing typing would cost every job's start
if TYPE_CHECKING:
    from typing import Any, NoReturn

IMPORT_FAILED = 2
FRAMEWORKS = ("streamlit", "dash", "panel", "fastapi", "flask")


class EntrypointError(Exception):
    pass


def _write(run_dir: str, name: str, text: str) -> None:
    try:  # 0600 whatever the user's umask: the run folder is the home's
        fd = os.open(os.path.join(run_dir, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w") as f:
            f.write(text)
    except OSError:
        pass


def _user_umask() -> None:
    """User code runs with the umask of the user who started localtailr (its own processes
    use 077 for the home; see ``core.home.private_umask``)."""
    value = os.environ.get("LOCALTAILR_USER_UMASK", "")
    if value:
        try:
            os.umask(int(value, 8) & 0o777)
        except ValueError:
            pass


def fail(run_dir: str, reason: str, code: int = 1) -> NoReturn:
    _write(run_dir, "failure.json", json.dumps({"reason": reason}))
    sys.stderr.write(f"localtailr: {reason}\n")
    sys.stderr.flush()
    os._exit(code)


def load_module(entry: dict):
    """Import the entrypoint's module: by name, or (kind "script") from its file the way
    ``core/user_code.py`` names a ``__main__`` script, so its ``__main__`` block does not run."""
    path = entry.get("sys_path")
    if path and path not in sys.path:
        sys.path.insert(0, path)
    if entry.get("kind") == "script":
        return _user_code().import_module("__main__", entry["file"])
    return importlib.import_module(entry["module"])


def _user_code() -> Any:
    """``localtailr/core/user_code.py``, loaded by path (this file runs before the package)."""
    name = "_localtailr_user_code"
    if name not in sys.modules:
        from importlib import util  # ~3 ms at job start: only for a __main__ script

        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, os.pardir, os.pardir, "core", "user_code.py")
        spec = util.spec_from_file_location(name, os.path.normpath(path))
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def resolve(module, qualname: str):
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


# Set while the job imports its own code: a deploy call at a script's top level (no
# ``if __name__ == "__main__":``) then deploys nothing (localtailr/core/own_code.py reads them;
# this file does not import the package before user code).
IMPORTING_VARS = {"LOCALTAILR_IMPORTING_JOB_CODE": "1", "DATATAILR_BATCH_DONT_RUN_WORKFLOW": "true"}


def load_own_code(entry: dict):
    """``load_module(entry)`` with IMPORTING_VARS set for the time of the import."""
    saved = {name: os.environ.get(name) for name in IMPORTING_VARS}
    os.environ.update(IMPORTING_VARS)
    try:
        return load_module(entry)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_entrypoint(run_dir: str, entry: dict):
    name = entry.get("file") if entry.get("kind") == "script" else entry.get("module")
    try:
        module = load_own_code(entry)
    except BaseException as exc:  # noqa: BLE001 - any failure of user code at import
        _traceback()
        fail(run_dir, f"cannot import entrypoint module {name!r}: {type(exc).__name__}: {exc}",
             IMPORT_FAILED)
    if not entry.get("qualname"):
        return module, None  # a module as the entrypoint (a streamlit script)
    try:
        return module, resolve(module, entry["qualname"])
    except AttributeError as exc:
        fail(run_dir, f"entrypoint {entry['qualname']!r} not found in module {name!r}: {exc}",
             IMPORT_FAILED)


def _traceback() -> None:
    import traceback  # ~7 ms: only on a failure

    traceback.print_exc()
    sys.stderr.flush()


# -- apps -----------------------------------------------------------------------------


def _wrapper_script(run_dir: str, entry: dict, tail: str) -> str:
    path = os.path.join(run_dir, "app_main.py")
    here = os.path.abspath(__file__)
    text = (
        "import importlib.util, json, sys\n"
        f"_spec = importlib.util.spec_from_file_location('_localtailr_bootstrap', {here!r})\n"
        "_b = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(_b)\n"
        f"_entry = json.loads({json.dumps(entry)!r})\n"
        "_fn = _b.resolve(_b.load_own_code(_entry), _entry['qualname'])\n"
        f"{tail}\n"
    )
    _write(run_dir, "app_main.py", text)
    return path


def _run_server(run_dir: str, module: str, args: list[str]) -> None:
    """``python -m module args``, run in this process (so that the prefix proxy's thread
    serves beside it) until the server ends."""
    import runpy
    from importlib import util  # only for a streamlit or panel app

    if util.find_spec(module) is None:
        fail(run_dir, f"cannot start {module}: it is not installed in the job's environment")
    sys.stdout.flush()
    sys.stderr.flush()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def _serve_page(run_dir: str, launch: dict, fn) -> None:
    """Serve a streamlit or panel app on PORT: the framework under the run's prefix
    (``/job/<env>/<name>``) on an internal port, and ``prefix_proxy`` on PORT, so that the
    app answers at ``/`` and under the prefix, websockets included."""
    framework, port, entry = launch["framework"], int(launch["port"]), launch["entrypoint"]
    prefix = (launch.get("prefix") or "").strip("/")
    internal, public, proxy = port, None, None
    if prefix:
        proxy = _sibling(PREFIX_PROXY, "prefix_proxy.py")
        try:
            public = proxy.bound_socket(port)
            with proxy.bound_socket() as spare:
                internal = spare.getsockname()[1]
        except OSError as exc:
            fail(run_dir, f"cannot bind the app's port {port}: {exc}")
    if framework == "streamlit":
        script = entry["file"] if fn is None else _wrapper_script(run_dir, entry, "_fn()")
        args = ["run", script, "--server.port", str(internal), "--server.address", "127.0.0.1",
                "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        args += ["--server.baseUrlPath", prefix] if prefix else []
    else:
        script = entry["file"] if fn is None else _wrapper_script(
            run_dir, entry,
            "_obj = _fn()\nif _obj is not None and hasattr(_obj, 'servable'):\n    _obj.servable()")
        args = ["serve", script, "--port", str(internal), "--address", "127.0.0.1",
                "--allow-websocket-origin", f"127.0.0.1:{port}",
                "--allow-websocket-origin", f"localhost:{port}"]
        args += ["--prefix", "/" + prefix] if prefix else []
    if proxy is not None:
        proxy.start(public, internal, prefix)
    _run_server(run_dir, framework, args)


def _is_asgi(obj) -> bool:
    import inspect  # ~10 ms: only for an app

    call = getattr(obj, "__call__", None)  # noqa: B004
    return call is not None and inspect.iscoroutinefunction(call) and not inspect.isfunction(obj)


def _serve_wsgi(app, port: int) -> None:
    from werkzeug.serving import make_server  # the job's own dependency: only for a Flask app

    print(f" * serving on http://127.0.0.1:{port}/", flush=True)
    make_server("127.0.0.1", port, app, threaded=True).serve_forever()


def _force_host_port(cls, method: str, port: int) -> None:
    original = getattr(cls, method)

    def run(self, *args, **kwargs):
        kwargs.update(host="127.0.0.1", port=port)
        kwargs.setdefault("debug", False)
        if method == "run" and cls.__name__ == "Flask":
            kwargs["use_reloader"] = False
        return original(self, **kwargs)  # positional host/port are replaced too

    setattr(cls, method, run)


def run_app(run_dir: str, launch: dict, fn, module) -> None:
    framework = launch.get("framework") or ""
    port = int(launch["port"])
    if framework in ("streamlit", "panel"):
        _serve_page(run_dir, launch, fn)
        return
    if fn is None:
        fail(run_dir, f"a {framework or 'non-streamlit'} app needs a function as its entrypoint, "
                      "not a module")
    if framework == "flask":
        import flask  # the job's own dependency: only for this framework

        _force_host_port(flask.Flask, "run", port)
        app = fn if isinstance(fn, flask.Flask) else fn()
        if app is None:
            app = getattr(module, "app", None)
        if not isinstance(app, flask.Flask) and not callable(app):
            fail(run_dir, "the flask entrypoint returned no Flask app and its module has none "
                          "named 'app'")
        _serve_wsgi(app, port)
    elif framework == "fastapi":
        import uvicorn  # the job's own dependency: only for this framework

        original = uvicorn.run

        def forced(app, **kwargs):
            kwargs.update(host="127.0.0.1", port=port)
            return original(app, **kwargs)

        uvicorn.run = forced
        app = fn if _is_asgi(fn) else fn()
        if app is None:
            app = getattr(module, "app", None)
        if app is None:
            fail(run_dir, "the fastapi entrypoint returned no app and its module has none "
                          "named 'app'")
        original(app, host="127.0.0.1", port=port, log_level="info")
    elif framework == "dash":
        import dash  # the job's own dependency: only for this framework

        _force_host_port(dash.Dash, "run", port)
        app = fn if isinstance(fn, dash.Dash) else fn()
        if app is None:
            app = getattr(module, "app", None)
        if not isinstance(app, dash.Dash):
            fail(run_dir, "the dash entrypoint returned no Dash app and its module has none "
                          "named 'app'")
        app.run(host="127.0.0.1", port=port, debug=False)
    else:
        fn()  # any other framework: the entrypoint serves on PORT itself


# -- excel add-ins --------------------------------------------------------------------


def excel_functions(fn, module) -> dict:
    """The entrypoint, and the public functions defined in its module, by name."""
    import inspect  # ~10 ms: only for an excel job

    out = {}
    for name, obj in vars(module).items():
        if (not name.startswith("_") and inspect.isfunction(obj)
                and obj.__module__ == module.__name__):
            out[name] = obj
    out[getattr(fn, "__name__", "entrypoint")] = fn
    return out


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return repr(value)


def serve_excel(functions: dict, port: int) -> None:
    import inspect  # ~10 ms: only for an excel job
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # only for an excel job

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, data) -> None:
            body = json.dumps(data, default=_jsonable).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            if self.path.rstrip("/") in ("", "/functions"):
                listing = [{"name": n, "signature": str(inspect.signature(f)),
                            "doc": inspect.getdoc(f) or ""} for n, f in functions.items()]
                self._send(200, {"functions": listing})
            else:
                self._send(404, {"error": f"no such path {self.path!r}", "type": "NotFound"})

        def do_POST(self):  # noqa: N802
            if not self.path.startswith("/call/"):
                self._send(404, {"error": f"no such path {self.path!r}; use POST /call/<function>",
                                 "type": "NotFound"})
                return
            name = self.path[len("/call/"):].split("?")[0]
            function = functions.get(name)
            if function is None:
                self._send(404, {"error": f"no function {name!r}; available: "
                                          f"{', '.join(sorted(functions))}", "type": "NotFound"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                payload = json.loads(raw) if raw.strip() else []
            except ValueError as exc:
                self._send(400, {"error": f"the body is not JSON: {exc}", "type": "ValueError"})
                return
            if isinstance(payload, dict) and set(payload) <= {"args", "kwargs"} and payload:
                args, kwargs = payload.get("args", []), payload.get("kwargs", {})
            elif isinstance(payload, dict):
                args, kwargs = [], payload
            elif isinstance(payload, list):
                args, kwargs = payload, {}
            else:
                args, kwargs = [payload], {}
            try:
                inspect.signature(function).bind(*args, **kwargs)
            except TypeError as exc:
                self._send(400, {"error": f"{name}: {exc}", "type": "TypeError"})
                return
            try:
                result = function(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - reported to the caller
                self._send(500, {"error": str(exc), "type": type(exc).__name__})
                return
            self._send(200, {"result": result})

        def log_message(self, fmt, *args):
            sys.stderr.write(f"{self.address_string()} - {fmt % args}\n")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f" * excel add-in functions {sorted(functions)} on http://127.0.0.1:{port}/call/",
          flush=True)
    server.serve_forever()


# -- main -----------------------------------------------------------------------------


def _run_folder(arg: str) -> str:
    if arg.isdigit():
        home = os.environ.get("LOCALTAILR_HOME") or os.path.expanduser("~/.localtailr")
        return os.path.join(home, "runs", arg)
    return arg


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.stderr.write("usage: bootstrap.py RUN_FOLDER | RUN_ID\n")
        return 2
    run_dir = _run_folder(argv[0])
    with open(os.path.join(run_dir, "launch.json")) as f:
        launch = json.load(f)
    if launch.get("log_cap"):
        _start_log_pump(run_dir, int(launch["log_cap"]))
    elif LOG_PUMP in sys.modules:
        sys.modules[LOG_PUMP].discard()  # one a fork server's child prepared: not wanted
    _user_umask()
    code = 1
    try:
        code = _run(run_dir, launch)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            sys.stderr.write(f"{exc.code}\n")
    except BaseException as exc:  # noqa: BLE001 - the user's failure, reported
        _traceback()
        _write(run_dir, "failure.json",
               json.dumps({"reason": f"{type(exc).__name__}: {exc}"[:500]}))
        code = 1
    _write(run_dir, "exit", str(code))
    sys.stdout.flush()
    sys.stderr.flush()
    return code


LOG_PUMP = "_localtailr_logpump"
PREFIX_PROXY = "_localtailr_prefix_proxy"


def _sibling(name: str, filename: str):
    """``filename`` of this folder as module ``name``, loaded by path once a process (the
    package is not imported before user code)."""
    module = sys.modules.get(name)
    if module is None:
        import importlib.util  # ~3 ms at job start: only when a sibling is needed

        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), filename)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise OSError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return module


def log_pump():
    """The log pump's module (``logpump.py``; a fork server loads it before it forks, so
    that its children do not)."""
    return _sibling(LOG_PUMP, "logpump.py")


def _start_log_pump(run_dir: str, cap: int) -> None:
    """Send stdout and stderr through the run's log pump (``logpump.py``); without it (it
    could not start) the daemon rotates the files itself."""
    try:
        log_pump().start(run_dir, cap)
    except OSError as exc:
        sys.stderr.write(f"localtailr: no log pump ({exc}); the logs are rotated as sampled\n")


def _run(run_dir: str, launch: dict) -> int:
    if launch.get("task"):
        try:
            # the localtailr package: only for a task (others run user code first)
            from localtailr.runtime.workflows import task_runner
        except ModuleNotFoundError as exc:
            fail(run_dir, f"workflow tasks need localtailr.runtime.workflows.task_runner: {exc}")
        return int(task_runner.main(launch) or 0)
    kind = launch.get("type", "batch")
    entry = launch["entrypoint"]
    if kind == "app" and launch.get("framework") in ("streamlit", "panel") and not entry.get("qualname"):
        run_app(run_dir, launch, None, None)  # the script itself is served; not imported here
        return 0
    module, fn = load_entrypoint(run_dir, entry)
    if fn is None and kind != "app":
        fail(run_dir, f"the entrypoint of a {kind} job must be a function, not module "
                      f"{entry.get('module')!r}", IMPORT_FAILED)
    if kind == "app":
        run_app(run_dir, launch, fn, module)
    elif kind == "excel":
        serve_excel(excel_functions(fn, module), int(launch["port"]))
    else:
        fn()
    return 0


if __name__ == "__main__":
    sys.exit(main())
