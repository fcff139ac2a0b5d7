"""``@task``: a function that is one step of a workflow.

Inside a ``@workflow`` body a task call returns a ``Node`` of the DAG being
built; anywhere else it runs the function. Parameters named like the batch
system arguments (``rundate``, ``scheduled_time``, ``started_at``,
``batch_name``, ``job_name``) are filled at run time, never at build time.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any

from localtailr.core.dag import (
    Node,
    check_containers,
    current_dag,
    function_reference,
    source_file_of,
)
from localtailr.core.resources import parse_cpu, parse_memory
from localtailr.core.task_call import (
    declared_system_args,
    default_system_args,
    user_signature,
)

DEFAULT_TASK_MEMORY = "128m"
DEFAULT_TASK_CPU = 0.25



class Task:
    """A function decorated with ``@task``: builds a node in a workflow body, runs elsewhere."""

    is_task = True  # what core.task_call.load_function unwraps
    __qualname__: str  # the function's, set by functools.update_wrapper

    def __init__(self, func: Callable, memory: str, cpu: float, retries: int, retry_backoff: float):
        if not callable(func):
            raise TypeError(f"@task needs a function, got {func!r}")
        parse_memory(memory)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"invalid retries {retries!r}: use a whole number >= 0")
        if isinstance(retry_backoff, bool) or not isinstance(retry_backoff, (int, float)) or not (
            0 <= retry_backoff < float("inf")
        ):
            raise ValueError(f"invalid retry_backoff {retry_backoff!r}: use seconds >= 0")
        functools.update_wrapper(self, func)
        self.func = func
        self.memory = memory
        self.cpu = parse_cpu(cpu)
        self.retries = retries
        self.retry_backoff = float(retry_backoff)
        self.system_args = declared_system_args(func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        dag = current_dag()
        if dag is None:
            return self._run_directly(args, kwargs)
        return self._node(dag, args, kwargs)

    def _run_directly(self, args: tuple, kwargs: dict) -> Any:
        """Plain Python call; declared system arguments the caller left out are filled."""
        if not self.system_args:
            return self.func(*args, **kwargs)
        sig = inspect.signature(self.func)
        try:
            bound = sig.bind_partial(*args, **kwargs)
        except TypeError:
            return self.func(*args, **kwargs)  # let Python report the bad call
        missing = [n for n in self.system_args if n not in bound.arguments]
        if missing:
            system = default_system_args(
                job_name=os.environ.get("DATATAILR_JOB_NAME", self.func.__name__)
            )
            for name in missing:
                bound.arguments[name] = system[name]
        return self.func(*bound.args, **bound.kwargs)

    def _node(self, dag: Any, args: tuple, kwargs: dict) -> Node:
        name = self.func.__name__
        given = [n for n in self.system_args if n in kwargs]
        if given:
            raise ValueError(
                f"task {name!r}: {', '.join(given)} is a system argument, filled when the task "
                "runs; do not pass it in the workflow"
            )
        try:
            user_signature(self.func).bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"task {name!r}: {exc}") from None
        for value in (*args, *kwargs.values()):
            check_containers(value, name)
        node = Node(
            dag,
            dag.unique_name(name),
            function_reference(self.func),
            args,
            kwargs,
            func=self.func,
            source_file=source_file_of(self.func),
            memory=self.memory,
            cpu=self.cpu,
            retries=self.retries,
            retry_backoff=self.retry_backoff,
            system_args=self.system_args,
        )
        return dag.add_node(node)

    def __reduce__(self) -> str:
        return self.__qualname__

    def __repr__(self) -> str:
        return f"<task {function_reference(self.func)}>"


def task(
    memory: str | Callable = DEFAULT_TASK_MEMORY,
    cpu: float = DEFAULT_TASK_CPU,
    retries: int = 0,
    retry_backoff: float = 1.0,
) -> Any:
    """Decorator that marks a function as a workflow task (batch job).

    Use it as ``@task()``, ``@task(memory="512m", cpu=2)`` or bare ``@task``.

    Args:
        memory: Memory limit for this task (e.g. "256m", "1g").
        cpu: Number of CPU cores for this task (e.g. 1, 0.5).
        retries: Extra attempts after a failure (localtailr addition).
        retry_backoff: Seconds before the first retry, doubling each time.

    Returns:
        A decorator that wraps the target function so it can participate
        in DAG-based workflow orchestration.
    """
    if callable(memory):
        return Task(memory, DEFAULT_TASK_MEMORY, cpu, retries, retry_backoff)

    def decorator(func: Callable) -> Task:
        return Task(func, memory, cpu, retries, retry_backoff)

    return decorator


