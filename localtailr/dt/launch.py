"""What runs inside a job deployed through ``dt``: the SDK's own runners, given the platform's
environment.

The definition's ``"datatailr"`` part (see ``jobdef``) says what to run. Before the user's
code (and the ``datatailr`` package) is imported, the launcher sets what the platform's
``datatailr_run`` sets: ``DATATAILR_JOB_TYPE``, ``DATATAILR_JOB_NAME``, the entrypoint, the
user's env vars, for a workflow task ``DATATAILR_BATCH_RUN_ID`` (the workflow run),
``DATATAILR_BATCH_ID``, ``DATATAILR_BATCH_VERSION``, ``DATATAILR_JOB_ID`` and
``DATATAILR_BATCH_CHILD_NUMBER``; it puts the job's code snapshot on ``sys.path`` and this
``dt`` first on ``PATH``. Then:

- ``batch_task``: ``datatailr_run_batch`` (imports ``module:function`` and calls it; the
  SDK's task wrapper reads its arguments from and writes its result to blobs via ``dt``);
- ``service``: ``datatailr_run_service`` (``func(int(DATATAILR_SERVICE_PORT))``);
- ``app``: the module served as the genuine launcher does (``module:app`` for flask and
  fastapi, ``module:server``'s app for dash, the module's file for streamlit, ``app.py``
  or ``main.py`` beside it for panel), answering at ``/`` and under ``/job/<env>/<name>/``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from ..platform import jobs as job_ops
from ..platform.context import context

SYSTEM_ARGS = ("rundate", "scheduled_time", "started_at", "batch_name", "job_name")
_RERUN = re.compile(r"rerun of the failures of run (\d+)")


def _setup(run_id: int) -> tuple[dict, dict]:
    """(definition, run) of ``run_id``, with the environment, sys.path and PATH prepared."""
    ctx = context()
    run = job_ops.get_run(ctx, run_id, events=False)
    definition = job_ops.definition_for_run(ctx.conn, run_id)
    meta = definition.get("datatailr") or {}
    os.environ.update(meta.get("env") or {})
    os.environ["DATATAILR_JOB_ENVIRONMENT"] = definition["environment"]
    if meta.get("sys_path") and meta["sys_path"] not in sys.path:
        sys.path.insert(0, meta["sys_path"])
    _put_dt_on_path(meta.get("dt"), run_id)
    return definition, run


def _put_dt_on_path(dt: str | None, run_id: int) -> None:
    """``<run folder>/.dt-bin/dt`` -> the saving ``dt``, first on PATH (without also putting
    that ``dt``'s interpreter first)."""
    if not dt or not os.path.isfile(dt):
        return
    folder = Path(context().home.run_dir(run_id)) / ".dt-bin"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "dt"
    if not link.exists():
        try:
            link.symlink_to(dt)
        except FileExistsError:
            pass
    os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def batch_task(child: int, rundate=None, scheduled_time=None, started_at=None, batch_name=None,
               job_name=None) -> None:
    """Run task ``child`` of a workflow deployed through ``dt`` (a node's function)."""
    run_id = int(os.environ["LOCALTAILR_RUN_ID"])
    definition, run = _setup(run_id)
    meta = definition["datatailr"]
    task = next(t for t in meta["tasks"] if t["child_number"] == child)
    os.environ.update(task.get("env") or {})
    workflow_run = run["parent_run_id"] or run_id
    os.environ.update({
        "DATATAILR_JOB_TYPE": "batch",
        "DATATAILR_BATCH_ENTRYPOINT": task["entrypoint"],
        "DATATAILR_BATCH_RUN_ID": str(workflow_run),
        "DATATAILR_BATCH_ID": meta["batch_id"],
        "DATATAILR_BATCH_VERSION": str(run["version"]),
        "DATATAILR_JOB_ID": str(child),
        "DATATAILR_BATCH_CHILD_NUMBER": str(child),
        "DATATAILR_JOB_NAME": f"{definition['name']}-{child}",
    })
    values = {"rundate": rundate, "scheduled_time": scheduled_time, "started_at": started_at,
              "batch_name": batch_name, "job_name": f"{definition['name']}-{child}"}
    for name, value in values.items():
        if value is not None:
            os.environ.setdefault(f"DATATAILR_BATCH_ARG_{name.upper()}", str(value))
    original = _rerun_of(workflow_run)
    if original is not None:
        os.environ["DATATAILR_BATCH_ARG_PARTIAL_RERUN"] = "true"
        os.environ["DATATAILR_BATCH_ARG_ORIGINAL_RUN_ID"] = str(original)
    _refresh_preloaded_sdk()
    from datatailr.sbin import datatailr_run_batch  # the SDK, installed in the job's image

    datatailr_run_batch.run()


def _refresh_preloaded_sdk() -> None:
    """Redo what datatailr 0.2.3 reads from the environment when it is imported, if the
    image's fork server imported it before this task's environment was set: the ``dt`` it
    found and the environment (both cached), the environment of its argument and result
    blobs, the job name and colour of its log lines."""
    if "datatailr" not in sys.modules:
        return
    from datatailr import logging as sdk_logging  # already imported: no cost
    from datatailr import utils as sdk_utils
    from datatailr.scheduler import arguments_cache

    sdk_utils.find_remote_cli_dt.cache_clear()
    sdk_utils.CURRENT_ENVIRONMENT = None  # get_dt_env()'s cache
    arguments_cache.__ENV__ = os.getenv("DATATAILR_JOB_ENVIRONMENT", "dev")
    sdk_logging.job_name = os.getenv("DATATAILR_JOB_NAME", "unknown_job")
    sdk_logging.USE_COLOR = not os.environ.get("NO_COLOR", "")


def _rerun_of(workflow_run: int) -> int | None:
    """The run whose failures ``workflow_run`` reruns (its results are that run's), or None."""
    try:
        run = job_ops.get_run(context(), workflow_run)
    except Exception:  # noqa: BLE001 - a run the caller cannot read is no rerun of its own
        return None
    for event in run.get("events") or []:
        found = _RERUN.search(event.get("detail") or "")
        if found:
            return _rerun_of(int(found.group(1))) or int(found.group(1))
    return None


def _long_running(kind: str) -> dict:
    definition, _run = _setup(int(os.environ["LOCALTAILR_RUN_ID"]))
    meta = definition["datatailr"]
    os.environ.update({"DATATAILR_JOB_TYPE": kind, "DATATAILR_ENTRYPOINT": meta["entrypoint"],
                       "DATATAILR_JOB_NAME": definition["name"], "DATATAILR_JOB_ID": "0"})
    os.environ.setdefault("DATATAILR_SERVICE_PORT", os.environ.get("PORT", "8080"))
    return definition


def service() -> None:
    """Run a service deployed through ``dt``: ``func(int(DATATAILR_SERVICE_PORT))``."""
    _long_running("service")
    from datatailr.sbin import datatailr_run_service  # the SDK, installed in the job's image

    datatailr_run_service.run()


def excel() -> None:
    raise RuntimeError("an Excel add-in needs Datatailr's proprietary Excel bridge "
                       "(dt-excel.sh), which localtailr does not have")


class _Prefix:
    """WSGI: serve the app at ``/`` and under ``prefix`` (moved to SCRIPT_NAME)."""

    def __init__(self, app, prefix: str):
        self.app, self.prefix = app, prefix.rstrip("/")

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == self.prefix or path.startswith(self.prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
            environ["PATH_INFO"] = path[len(self.prefix):] or "/"
        return self.app(environ, start_response)


class _AsgiPrefix:
    """ASGI: serve the app at ``/`` and under ``prefix``, there as ``uvicorn --root-path``
    (the platform's launcher) does: the prefix is the ``root_path`` and ``path`` keeps it
    (what Starlette's routes and mounts, e.g. StaticFiles, expect)."""

    def __init__(self, app, prefix: str):
        self.app, self.prefix = app, prefix.rstrip("/")

    async def __call__(self, scope, receive, send):
        if scope.get("type") in ("http", "websocket"):
            path = scope.get("path", "")
            if path == self.prefix or path.startswith(self.prefix + "/"):
                scope = dict(scope, root_path=scope.get("root_path", "") + self.prefix)
        await self.app(scope, receive, send)


def app():
    """Serve an app deployed through ``dt`` as the genuine launcher would; what the local
    runtime serves (a WSGI/ASGI app or Dash app), or None when it ran the page itself."""
    import importlib  # only for an app: batch and service jobs need neither
    import runpy

    definition = _long_running("app")
    meta = definition["datatailr"]
    module_name = meta["entrypoint"].partition(":")[0]
    framework = meta.get("framework")
    os.environ.setdefault("DATATAILR_FRAMEWORK", framework or "")
    prefix = f"/job/{definition['environment']}/{definition['name']}/"
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        raise ImportError(f"module {module_name!r} of the app's entrypoint cannot be found")
    if framework == "streamlit":
        runpy.run_path(spec.origin, run_name="__main__")
        return None
    if framework == "panel":
        folder = Path(spec.origin).parent
        page = next((folder / f for f in ("app.py", "main.py") if (folder / f).exists()), None)
        if page is None:
            raise FileNotFoundError(f"no app.py or main.py in {folder} (panel app)")
        runpy.run_path(str(page), run_name="__main__")
        return None
    if framework == "dash":
        os.environ["DASH_REQUESTS_PATHNAME_PREFIX"] = prefix
    module = importlib.import_module(module_name)
    served = getattr(module, "app", None)
    if served is None:
        raise AttributeError(f"module {module_name!r} has no 'app' to serve ({framework})")
    if framework == "dash":
        served.server.wsgi_app = _Prefix(served.server.wsgi_app, prefix)
        return served
    if framework == "flask":
        served.wsgi_app = _Prefix(served.wsgi_app, prefix)
        return served
    return _AsgiPrefix(served, prefix)
