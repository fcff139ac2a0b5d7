"""``@workflow``: a function whose body wires ``@task`` calls into a DAG.

Calling the decorated function builds the DAG, then:

- ``my_wf()`` saves it as a new version and runs it through the daemon
  (through the submitter the runtime registers with ``set_submitter``);
- ``my_wf(save_only=True)`` saves it without running;
- ``my_wf(to_json=True)`` returns its JSON (a string) and does nothing else;
- ``my_wf(local_run=True)`` runs it here, in dependency order, and returns
  ``{node name: result}``; a failed task skips its dependents and, once the
  others have finished, raises ``WorkflowFailed``.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from localtailr.core import env_text, own_code
from localtailr.core.dag import DAG, Node, function_reference, resolve_value, source_file_of
from localtailr.core.task_call import (
    BATCH_JOB_ARGUMENTS,
    call_task,
    default_system_args,
    load_function,
    run_node,
)
from localtailr.sdk.task import DEFAULT_TASK_CPU, DEFAULT_TASK_MEMORY, Task, task

__all__ = [
    "BATCH_JOB_ARGUMENTS",
    "DEFAULT_TASK_CPU",
    "DEFAULT_TASK_MEMORY",
    "Task",
    "WorkflowBuildError",
    "WorkflowFailed",
    "build_dag",
    "default_system_args",
    "load_function",
    "parse_duration",
    "run_local",
    "run_node",
    "set_submitter",
    "submit",
    "task",
    "workflow",
]

Submitter = Callable[[dict, dict, bool], Any]
_submitter: Submitter | None = None

_DURATION = re.compile(r"^\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")


class WorkflowBuildError(ValueError):
    """The workflow body raised while building the DAG; nothing was saved or run."""


class WorkflowFailed(RuntimeError):
    """A local run in which some tasks failed.

    Attributes:
        results: ``{name: result}`` of the tasks that succeeded.
        failed: ``{name: exception}`` of the tasks that failed.
        skipped: names of the tasks not run because an upstream failed.
        states: ``{name: "succeeded" | "failed" | "skipped"}`` for every task.
    """

    def __init__(self, workflow: str, results: dict, failed: dict, skipped: list[str]):
        self.workflow = workflow
        self.results = results
        self.failed = failed
        self.skipped = skipped
        self.states = (
            {n: "succeeded" for n in results}
            | {n: "failed" for n in failed}
            | {n: "skipped" for n in skipped}
        )
        first, exc = next(iter(failed.items()))
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        skip = f"; skipped: {', '.join(skipped)}" if skipped else ""
        super().__init__(
            f"workflow {workflow!r}: task {first!r} failed{more}: "
            f"{type(exc).__name__}: {exc}{skip}"
        )


# -- the daemon hook -------------------------------------------------------------

def set_submitter(submitter: Submitter | None) -> None:
    """Register the callable that saves/runs a workflow through the daemon (None removes it).

    It is called as ``submitter(dag_json, workflow_options, save_only)``.
    """
    global _submitter
    if submitter is not None and not callable(submitter):
        raise TypeError(f"set_submitter needs a callable or None, got {submitter!r}")
    _submitter = submitter


def submit(dag_json: dict, workflow_options: dict, save_only: bool) -> Any:
    """Hand a built workflow to the registered submitter and return what it returns."""
    if _submitter is None:
        # `from localtailr.sdk.workflow import workflow` skips the package's registration.
        import localtailr.sdk.workflow_run  # noqa: F401 (registers itself)
    if _submitter is None:
        raise RuntimeError(
            "running a workflow through the daemon needs the runtime "
            "(no submitter registered); use local_run=True to run it in this process"
        )
    return _submitter(dag_json, workflow_options, save_only)


# -- options ---------------------------------------------------------------------

def parse_duration(value: datetime.timedelta | float | str | None) -> float | None:
    """Seconds from a timedelta, a number of seconds, or a string like '1h 30m', '45m', '10s'."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip() and (m := _DURATION.fullmatch(value)):
        h, mi, s = (int(g) if g else 0 for g in m.groups())
        seconds = float(h * 3600 + mi * 60 + s)
    else:
        raise ValueError(
            f"invalid duration {value!r}: use a timedelta, seconds, or a string like "
            "'1h 30m', '45m' or '10s'"
        )
    if not 0 < seconds < float("inf"):
        raise ValueError(f"invalid duration {value!r}: it must be more than zero")
    return seconds


def _options(func: Callable, given: dict) -> dict:
    """The workflow's options, validated; durations in seconds, cron string beside schedule."""
    opts = dict(given)
    opts["name"] = opts["name"] or func.__name__.replace("_", " ").title()
    if not isinstance(opts["name"], str) or not opts["name"].strip():
        raise ValueError(f"invalid workflow name {opts['name']!r}: use a non-empty string")
    schedule = opts["schedule"]
    if schedule is not None and not callable(getattr(schedule, "get_cron_string", None)):
        raise ValueError(
            f"invalid schedule {schedule!r}: use a Schedule (an object with get_cron_string())"
        )
    opts["cron"] = schedule.get_cron_string() if schedule is not None else None
    opts["fail_after"] = parse_duration(opts["fail_after"])
    opts["expire_after"] = parse_duration(opts["expire_after"])
    env_vars = dict(opts["env_vars"] or {})
    for key, value in env_vars.items():
        if not env_text.is_name(key):
            raise ValueError(f"invalid env_vars name {key!r}: use letters, digits and _")
        if not isinstance(value, (str, int, float, bool)):
            raise ValueError(  # noqa: TRY004 - bad input is a ValueError here
                f"invalid env_vars value for {key}: {value!r} (use str, int, float or bool)"
            )
        if isinstance(value, str):
            env_text.check_value(f"env_vars value for {key}", value)
    opts["env_vars"] = env_vars
    mp = opts["max_parallel"]
    if mp is not None and (isinstance(mp, bool) or not isinstance(mp, int) or mp < 1):
        raise ValueError(f"invalid max_parallel {mp!r}: use a whole number >= 1, or None")
    reqs = opts["python_requirements"]
    if not isinstance(reqs, (str, list, tuple)):
        raise ValueError(  # noqa: TRY004 - bad input is a ValueError here
            f"invalid python_requirements {reqs!r}: use a string, a list of strings or 'auto'"
        )
    opts["function"] = function_reference(func)
    opts["source_file"] = source_file_of(func)
    return opts


def _json_options(opts: dict) -> dict:
    """The options as JSON data, for ``to_json``."""
    out: dict[str, Any] = {}
    for key, value in opts.items():
        if key == "schedule":
            continue
        if hasattr(value, "to_dict"):
            value = value.to_dict()
        elif value is not None and not isinstance(value, (str, int, float, bool, list, dict)):
            value = str(value)
        out[key] = value
    return out


# -- building and running -------------------------------------------------------

def build_dag(func: Callable, name: str, args: tuple = (), kwargs: dict | None = None) -> DAG:
    """Run a workflow body with task calls recording nodes; the resulting, checked DAG."""
    dag = DAG(name)
    try:
        with dag.building():
            func(*args, **(kwargs or {}))
        dag.validate()
    except Exception as exc:
        raise WorkflowBuildError(
            f"workflow {name!r} failed while building its DAG: {type(exc).__name__}: {exc}"
        ) from exc
    if not dag.nodes:
        raise WorkflowBuildError(f"workflow {name!r} has no tasks: call @task functions in it")
    return dag


def run_local(dag: DAG, system_args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run ``dag`` in this process in dependency order; ``{name: result}``.

    A failing task (after its retries) marks its dependents skipped; the other
    tasks still run, then WorkflowFailed is raised.
    """
    order = dag.topological_order()
    base = default_system_args(batch_name=dag.name)
    base.update(system_args or {})
    results: dict[int, Any] = {}
    failed: dict[str, BaseException] = {}
    skipped: list[str] = []
    bad: set[int] = set()
    for node in order:
        if any(id(u) in bad for u in node.upstream()):
            bad.add(id(node))
            skipped.append(node.name)
            continue
        try:
            results[id(node)] = _run_with_retries(node, results, {**base, "job_name": node.name})
        except Exception as exc:  # noqa: BLE001 - a task's failure is recorded, not fatal
            bad.add(id(node))
            failed[node.name] = exc
    by_name = {n.name: results[id(n)] for n in dag.nodes if id(n) in results}
    if failed:
        raise WorkflowFailed(dag.name, by_name, failed, skipped) from next(iter(failed.values()))
    return by_name


def _run_with_retries(node: Node, results: dict[int, Any], system: dict) -> Any:
    attempt = 0
    while True:
        try:
            if node.func is None:  # rebuilt from JSON: import the function, decode arguments
                inputs = {n.name: results[id(n)] for n in node.upstream()}
                return run_node(node.to_dict(), inputs, system)
            args = resolve_value(node.args, lambda n: results[id(n)])
            kwargs = resolve_value(node.kwargs, lambda n: results[id(n)])
            return call_task(node.func, args, kwargs, system)
        except Exception:
            if attempt >= node.retries:
                raise
            time.sleep(node.retry_backoff * (2**attempt))
            attempt += 1


# -- the decorator ----------------------------------------------------------------

def workflow(
    name: str | Callable | None = None,
    schedule: Any = None,
    image: Any = None,
    run_as: Any = None,
    resources: Any = None,
    acl: Any = None,
    python_version: str = "auto",
    python_requirements: str | list[str] = "",
    build_script_pre: str = "",
    build_script_post: str = "",
    env_vars: dict[str, str | int | float | bool] | None = None,
    fail_after: datetime.timedelta | str | None = None,
    expire_after: datetime.timedelta | str | None = None,
    environment: Any = None,
    max_parallel: int | None = None,
) -> Any:
    """Decorator that turns a function of ``@task`` calls into a workflow (a batch DAG).

    Args:
        name: The workflow's name; default: the function's name in title case.
        schedule: A Schedule (anything with ``get_cron_string()``); None runs on demand.
        image, run_as, resources, acl, environment: As for other jobs.
        python_version, python_requirements, build_script_pre, build_script_post:
            The workflow's image.
        env_vars: Environment variables for every task.
        fail_after, expire_after: A timedelta, seconds, or '1h 30m' / '45m' / '10s'.
        max_parallel: Tasks run at once (localtailr addition; default: the core count).

    Calling the workflow accepts the body's own arguments plus ``local_run``,
    ``to_json``, ``save_only`` and any of the options above to override them.
    """
    if callable(name) and not isinstance(name, str):
        return workflow()(name)
    defaults = {
        "name": name,
        "schedule": schedule,
        "image": image,
        "run_as": run_as,
        "resources": resources,
        "acl": acl,
        "python_version": python_version,
        "python_requirements": python_requirements,
        "build_script_pre": build_script_pre,
        "build_script_post": build_script_post,
        "env_vars": env_vars,
        "fail_after": fail_after,
        "expire_after": expire_after,
        "environment": environment,
        "max_parallel": max_parallel,
    }

    def decorator(func: Callable) -> Callable:
        _options(func, defaults)  # bad options fail at decoration time

        @functools.wraps(func)
        def wrapper(
            *args: Any,
            local_run: bool = False,
            to_json: bool = False,
            save_only: bool = False,
            **kwargs: Any,
        ) -> Any:
            if local_run and own_code.workflows_held():
                return None  # a job's process importing its code runs no tasks of its own
            overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in defaults and k != "name"}
            given = {k: (overrides[k] if overrides.get(k) is not None else v)
                     for k, v in defaults.items()}
            opts = _options(func, given)
            if local_run and save_only:
                raise ValueError("local_run=True and save_only=True cannot be combined")
            dag = build_dag(func, opts["name"], args, kwargs)
            if to_json:
                return json.dumps({**dag.to_dict(), "workflow": _json_options(opts)}, indent=2)
            if local_run:
                return run_local(dag)
            # while held (a job's process importing its code) the submitter deploys
            # nothing and returns the existing run or job
            return submit(dag.to_dict(), opts, save_only)

        wrapper.__localtailr_workflow__ = True  # type: ignore[attr-defined]
        return wrapper

    return decorator
