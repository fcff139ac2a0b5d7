"""Calling a task's function: its module loaded, its inputs decoded, and the platform's
system arguments (rundate, scheduled_time, started_at, batch_name, job_name) filled in.

``sdk.task`` (the ``@task`` decorator, run locally) and the task runner of the runtime (a
task's own process) both call tasks through here.
"""

from __future__ import annotations

import datetime
import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

from . import own_code, user_code
from .dag import decode_value

BATCH_JOB_ARGUMENTS = ("rundate", "scheduled_time", "started_at", "batch_name", "job_name")
ENV_PREFIX = "DATATAILR_BATCH_ARG_"
_VAR = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class TaskImportError(ImportError):
    """A task's function cannot be imported in the process that should run it."""


def default_system_args(
    batch_name: str = "",
    job_name: str = "",
    scheduled_time: datetime.datetime | str | None = None,
    started_at: datetime.datetime | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The five system arguments as strings, as the platform passes them.

    Each comes from ``DATATAILR_BATCH_ARG_<NAME>`` in ``environ`` when set, else:
    rundate = the date of ``scheduled_time`` (else today) as ``YYYY-MM-DD``;
    scheduled_time and started_at = ISO datetimes (now when not given);
    batch_name and job_name = the given names.
    """
    env = os.environ if environ is None else environ
    now = datetime.datetime.now().astimezone()
    started = _as_datetime(started_at) or now
    scheduled = _as_datetime(scheduled_time) or started
    values = {
        "rundate": scheduled.date().isoformat(),
        "scheduled_time": scheduled.isoformat(timespec="seconds"),
        "started_at": started.isoformat(timespec="seconds"),
        "batch_name": batch_name,
        "job_name": job_name,
    }
    for name in BATCH_JOB_ARGUMENTS:
        if env.get(ENV_PREFIX + name.upper()):
            values[name] = env[ENV_PREFIX + name.upper()]
    return values


def _as_datetime(value: datetime.datetime | str | None) -> datetime.datetime | None:
    if value is None or isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(value)


def declared_system_args(func: Callable) -> tuple[str, ...]:
    """The system arguments ``func`` declares as named parameters."""
    params = inspect.signature(func).parameters.values()
    return tuple(p.name for p in params if p.name in BATCH_JOB_ARGUMENTS and p.kind not in _VAR)


def user_signature(func: Callable) -> inspect.Signature:
    sig = inspect.signature(func)
    return sig.replace(
        parameters=[
            p for p in sig.parameters.values() if p.name not in BATCH_JOB_ARGUMENTS or p.kind in _VAR
        ]
    )


def call_task(func: Callable, args: tuple, kwargs: dict, system_args: Mapping[str, Any]) -> Any:
    """Call ``func`` with the caller's arguments plus the system arguments it declares."""
    declared = declared_system_args(func)
    bound = user_signature(func).bind(*args, **kwargs)
    sig = inspect.signature(func)
    arguments: dict[str, Any] = {}
    for name in sig.parameters:
        if name in declared and name in system_args:
            arguments[name] = system_args[name]
        elif name in bound.arguments:
            arguments[name] = bound.arguments[name]
    full = inspect.BoundArguments(sig, arguments)
    full.apply_defaults()
    return func(*full.args, **full.kwargs)


def load_function(reference: str, source_file: str | None = None) -> Callable:
    """The plain function named ``"module:qualname"`` (a ``@task`` is unwrapped).

    A ``__main__`` function is loaded from ``source_file`` under another module
    name, so the script's ``if __name__ == "__main__":`` block does not run.
    While importing, a module-level workflow or job deploy does not deploy again
    (``localtailr.core.own_code``).
    """
    module_name, _, qualname = reference.partition(":")
    if not module_name or not qualname:
        raise ValueError(f"invalid function reference {reference!r}: use 'module:qualname'")
    try:
        with own_code.importing_job_code():  # a module-level deploy must not deploy again
            module = user_code.import_module(module_name, source_file)
        obj: Any = module
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise TaskImportError(
            f"cannot import task function {reference!r}: {type(exc).__name__}: {exc}"
        ) from exc
    if getattr(type(obj), "is_task", False) is True:  # a @task: the function it wraps
        obj = obj.func
    if not callable(obj):
        raise TaskImportError(f"task function {reference!r} is not callable: {obj!r}")
    return obj


def run_node(node: Mapping, inputs: Mapping[str, Any], system_args: Mapping[str, Any]) -> Any:
    """Run one node of ``DAG.to_dict()`` and return its result.

    ``inputs`` maps each upstream node's name to its result (at least those the
    node's arguments refer to); ``system_args`` gives rundate, scheduled_time,
    started_at, batch_name and job_name (missing ones get the defaults of
    ``default_system_args``, with job_name = the node's name).
    """
    func = load_function(node["function"], node.get("source_file"))

    def lookup(name: str) -> Any:
        try:
            return inputs[name]
        except KeyError:
            raise ValueError(f"task {node['name']!r} needs the result of {name!r}") from None

    args = tuple(decode_value(a, lookup) for a in node["args"])
    kwargs = {k: decode_value(v, lookup) for k, v in node["kwargs"].items()}
    system = default_system_args(job_name=node["name"])
    system.update(system_args)
    return call_task(func, args, kwargs, system)
