"""What calling a ``@workflow`` does: save it as a job version and start a run.

Registered with ``sdk.workflow.set_submitter`` when ``localtailr`` is imported.
``submit(dag_json, options, save_only)``:

- builds the job definition (type ``"workflow"``): the DAG (``"workflow"``), the
  schedule, the image from ``python_requirements`` & co, resources, env_vars,
  ``fail_after`` / ``expire_after`` / ``max_parallel``, the folders the tasks'
  modules are imported from (``"sys_path"``);
- saves it as a new version through ``platform.jobs`` and writes the job's
  schedule row (``runtime.schedules``) in the same transaction: an unknown
  run-after job or any other bad input saves nothing;
- unless ``save_only``, creates the parent run (``pending``), makes sure the daemon
  runs (``runtime.client.ensure_daemon``) and returns a ``WorkflowRun`` handle;
  ``save_only`` returns the job (a dict).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..core import own_code, settings
from ..core.home import Home
from ..platform import jobs, workflows
from ..platform import logs as _logs
from ..platform.context import Context, context
from ..runtime import client
from . import workflow as sdk_workflow
from .acl import acl_dict
from .image import Image
from .workflow import task, workflow

__all__ = ["WorkflowRun", "build_definition", "save", "submit", "task", "workflow"]


class WorkflowRun:
    """A handle on one workflow run: ``state``, ``wait()``, ``logs()``, ``results()``,
    ``tasks()``, ``stop()``, ``rerun_failed()``. Each call is made as the caller of the
    moment (``LOCALTAILR_USER``), with that caller's rights on the workflow's job."""

    def __init__(self, home: Home, run_id: int, job: str):
        self.home = home
        self.run_id = run_id
        self.job = job

    def _ctx(self) -> Context:
        return context(self.home)

    @property
    def state(self) -> str:
        return jobs.get_run(self._ctx(), self.run_id, events=False)["state"]

    @property
    def reason(self) -> str | None:
        return jobs.get_run(self._ctx(), self.run_id, events=False)["reason"]

    def wait(self, timeout: float | None = 600.0) -> str:
        """Wait until the run ends; its final state. TimeoutError after ``timeout`` seconds.

        The daemon is started if it is not running. Called from inside the run (a task
        whose module waits for its workflow at the top level) it cannot end: the current
        state is returned.
        """
        own = _own_run(self.home)
        if own is not None and self.run_id in (own["run_id"], own["parent_run_id"]):
            return self.state
        client.ensure_daemon(self.home)
        try:
            return jobs.wait(self._ctx(), self.run_id, timeout)["state"]
        except TimeoutError as exc:
            raise TimeoutError(f"workflow {exc}") from None

    def results(self) -> dict[str, Any]:
        """``{task name: result}`` of the tasks that succeeded (needs READ)."""
        return workflows.results(self._ctx(), self.run_id)

    def tasks(self) -> list[dict]:
        """Every task attempt: state, reason, times, result repr, error (needs READ)."""
        return workflows.tasks(self._ctx(), self.run_id)

    def logs(self, tail: int | None = None, stderr: bool = False) -> str:
        """What the tasks printed: each task's latest attempt under a ``== task ==`` line
        (with ``tail``, its last lines)."""
        latest = {t["task_name"]: t["run_id"] for t in self.tasks()}  # oldest first: last wins
        ctx = self._ctx()
        parts = []
        for name, rid in latest.items():
            body = _logs.read(ctx, run_id=rid, stderr=stderr, tail=tail)
            parts.append(f"== {name} (run #{rid}) ==\n{body}" + ("" if body.endswith("\n") or not body else "\n"))
        return "".join(parts)

    def stop(self) -> None:
        """Stop the run: its running tasks are killed, the rest skipped (needs OPERATE)."""
        workflows.stop(self._ctx(), self.run_id)

    def rerun_failed(self) -> WorkflowRun:
        """A new run that reuses what succeeded here and runs the rest (needs OPERATE)."""
        new = WorkflowRun(self.home, workflows.rerun_failed(self._ctx(), self.run_id), self.job)
        client.ensure_daemon(self.home)
        return new

    def __int__(self) -> int:
        return self.run_id

    def __repr__(self) -> str:
        return f"WorkflowRun(job={self.job!r}, run_id={self.run_id}, state={self.state!r})"




def module_folder(module_name: str, source_file: str | None = None) -> str | None:
    """The folder from which ``module_name`` is importable (None: installed packages)."""
    if module_name == "__main__":
        return str(Path(source_file).resolve().parent) if source_file else None
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve()
    levels = len(module_name.split(".")) - (0 if path.name == "__init__.py" else 1)
    root = path.parent
    for _ in range(levels):
        root = root.parent
    if root.name in ("site-packages", "dist-packages"):
        return None
    return str(root)


def _entrypoint(opts: dict) -> dict:
    module, _, qualname = opts["function"].partition(":")
    if module == "__main__":
        file = opts.get("source_file")
        return {"module": "__main__", "qualname": qualname,
                "sys_path": module_folder(module, file), "file": file, "kind": "script"}
    mod = sys.modules.get(module)
    return {"module": module, "qualname": qualname, "sys_path": module_folder(module),
            "file": getattr(mod, "__file__", None), "kind": "module"}


def _image(opts: dict) -> dict:
    image = opts.get("image")
    if image is None:
        image = Image(
            python_version=opts.get("python_version") or "auto",
            python_requirements=opts.get("python_requirements") or "",
            build_script_pre=opts.get("build_script_pre") or "",
            build_script_post=opts.get("build_script_post") or "",
        )
    if isinstance(image, Image):
        return image.to_dict()
    return image.to_dict() if hasattr(image, "to_dict") else dict(image)


def build_definition(dag_json: dict, opts: dict) -> dict:
    """The job definition of a workflow (see the runtime contract)."""
    resources = opts.get("resources")
    if resources is not None and hasattr(resources, "to_dict"):
        resources = resources.to_dict()
    schedule = opts.get("schedule")
    run_as = opts.get("run_as")
    folders: list[str] = []
    for node in dag_json["nodes"]:
        module = node["function"].partition(":")[0]
        folder = module_folder(module, node.get("source_file"))
        if folder and folder not in folders:
            folders.append(folder)
    return {
        "name": opts["name"],
        "display_name": opts["name"],
        "type": "workflow",
        "environment": getattr(opts.get("environment"), "value", opts.get("environment")),
        "entrypoint": _entrypoint(opts),
        "image": _image(opts),
        "resources": resources,
        "run_as": getattr(run_as, "name", run_as),
        "env_vars": opts.get("env_vars") or {},
        "framework": None,
        "schedule": schedule.to_dict() if schedule is not None else None,
        "workflow": dag_json,
        "fail_after": opts.get("fail_after"),
        "expire_after": opts.get("expire_after"),
        "max_parallel": opts.get("max_parallel"),
        "sys_path": folders,
    }


def save(dag_json: dict, opts: dict, start: bool, home: Home | None = None) -> tuple[dict, int | None]:
    """Save the workflow (and its schedule) as a new version; start a run if ``start``.

    Returns (the job, the new run id or None), all in one transaction.
    """
    definition = build_definition(dag_json, opts)
    ctx = context(home, environment=definition["environment"])
    acl_ = acl_dict(opts.get("acl")) if opts.get("acl") is not None else None
    return workflows.save(ctx, definition, acl_, start)


def submit(dag_json: dict, opts: dict, save_only: bool) -> WorkflowRun | dict | None:
    """The submitter ``sdk.workflow`` calls: save, and unless ``save_only`` run.

    In a job's process importing its own code (``own_code``) nothing is saved or run:
    the existing run (or with ``save_only`` the job) is returned, None if there is none.
    """
    home = Home.current()
    if own_code.workflows_held():
        return existing(home, opts, save_only)
    job, run_id = save(dag_json, opts, start=not save_only, home=home)
    if run_id is None:
        return job
    client.ensure_daemon(home)
    client.notify(home)  # after the commit (jobs.start's own notify came before it)
    return WorkflowRun(home, run_id, job["name"])


def existing(home: Home, opts: dict, save_only: bool) -> WorkflowRun | dict | None:
    """The workflow's job (``save_only``) or run as it is: the run this process is a task
    of, else the latest run; None if there is none (or the caller may not read it)."""
    environment = getattr(opts.get("environment"), "value", opts.get("environment"))
    ctx = context(home, environment=environment)
    name = jobs.normalise_name(opts["name"])
    try:
        if save_only:
            return jobs.get(ctx, name)
        own = _own_run(home)
        if own is not None and own["job"] == name and own["environment"] == ctx.environment:
            return WorkflowRun(home, own["parent_run_id"] or own["run_id"], name)
        latest = jobs.runs(ctx, name, limit=1)  # newest first, task runs left out
    except (KeyError, PermissionError):
        return None
    return WorkflowRun(home, latest[0]["run_id"], name) if latest else None


def _own_run(home: Home) -> dict | None:
    """The run this process is (``LOCALTAILR_RUN_ID``), None outside a run."""
    value = settings.RUN_ID.text()
    if not value.isdigit():
        return None
    try:
        return jobs.get_run(context(home), int(value), events=False)
    except (KeyError, PermissionError):
        return None


sdk_workflow.set_submitter(submit)
