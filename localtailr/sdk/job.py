"""``App``, ``Service``, ``ExcelAddin`` and (beside the SDK's names) ``BatchJob``.

Each is a job definition: ``run()`` saves it as a new version and starts it through the
daemon (started on demand); ``save()`` only saves it. Names are normalised as the
platform does ("Simple Service - alice" → ``simple-service-alice``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from ..core import entrypoints, environments, own_code
from ..core.resources import Resources
from ..platform import jobs as _jobs
from ..platform import logs as _logs
from ..runtime.client import ensure_daemon, ensure_daemon_for
from .acl import acl_dict
from .calling import caller
from .environment import Environment
from .image import Image
from .run import JobRun
from .user import User


class _Job:
    """What every job definition shares."""

    _type = "batch"

    def __init__(
        self,
        name: str,
        entrypoint: Callable,
        environment: Environment | None = Environment.DEV,
        image: Any = None,
        run_as: Any = None,
        resources: Resources = Resources(),
        acl: Any = None,
        framework: str | None = None,
        python_version: str = "3.12",
        python_requirements: str | list[str] = "",
        build_script_pre: str = "",
        build_script_post: str = "",
        env_vars: dict[str, str | int | float | bool] = {},  # noqa: B006 - the reference's default
        update_existing: bool = False,
    ):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"invalid job name {name!r}: use a non-empty string")
        self.name = name
        self.job_name = _jobs.normalise_name(name)
        self.environment = Environment(_environment(environment))
        self.entrypoint = entrypoint
        self._entrypoint = entrypoints.entrypoint_of(entrypoint)
        if isinstance(resources, dict):
            resources = Resources.from_dict(resources)
        if not isinstance(resources, Resources):
            raise ValueError(f"invalid resources {resources!r}: use Resources(memory=..., cpu=...)")
        self.resources = Resources(resources.memory, resources.cpu)  # re-validated
        self.env_vars = _jobs.check_env_vars(env_vars)
        self.framework = entrypoints.framework(framework)
        self.run_as = _run_as_name(run_as)
        if self.run_as is not None:
            if not User.exists(self.run_as):
                raise ValueError(f"run_as user {self.run_as!r} does not exist")
        self.acl = acl
        self._acl = acl_dict(acl)
        self.update_existing = bool(update_existing)
        self.image = self._make_image(
            image, python_version, python_requirements, build_script_pre, build_script_post
        )
        self.python_version = python_version
        self.python_requirements = python_requirements
        self.build_script_pre = build_script_pre
        self.build_script_post = build_script_post
        self.version: int | None = None
        self.last_run: dict | None = None

    @staticmethod
    def _make_image(image, python_version, python_requirements, pre, post):
        if image is not None:
            if not isinstance(image, (Image, dict)):
                raise ValueError(f"invalid image {image!r}: use an Image")
            return image
        return Image(python_version=python_version, python_requirements=python_requirements,
                     build_script_pre=pre, build_script_post=post)

    # -- the definition -------------------------------------------------------------

    def to_dict(self) -> dict:
        """The job definition as the platform stores it."""
        image = self.image.to_dict() if hasattr(self.image, "to_dict") else dict(self.image)
        return {
            "name": self.job_name,
            "display_name": self.name,
            "type": self._type,
            "environment": self.environment.value,
            "entrypoint": dict(self._entrypoint),
            "image": image,
            "resources": self.resources.to_dict(),
            "run_as": self.run_as,
            "env_vars": dict(self.env_vars),
            "framework": self.framework,
            "schedule": self._schedule_dict(),
            "workflow": None,
        }

    def _schedule_dict(self) -> dict | None:
        return None

    def to_json(self) -> str:
        """The job definition as JSON."""
        return json.dumps(self.to_dict())

    def _ctx(self):
        return caller(self.environment.value)

    # -- operations -----------------------------------------------------------------

    def save(self) -> dict | None:
        """Save the definition as a new version (the current one); return the job.

        Starts the daemon if the job has a schedule or should be running. In a job's
        process importing its own code this saves nothing (see ``run``).
        """
        if own_code.importing():
            return self._existing_job()
        ctx = self._ctx()
        job = _jobs.save(ctx, self.to_dict(), self._acl, self.update_existing)
        ensure_daemon_for(ctx.home, job)
        self.version = job["version"]
        return job

    def run(self) -> JobRun | None:
        """Save the definition as a new version and start it; return the run (a ``JobRun``:
        ``state``, ``wait()``, ``logs()``, ``stop()``, and the run's fields as a dict).

        Starts the daemon if it is not running (one line says where it is). In a job's
        process importing its own code (a script that deploys at its top level, with no
        ``if __name__ == "__main__":``), it deploys nothing and returns the job's latest
        run (None if it has none), as the platform does.
        """
        if own_code.importing():
            return self._existing_run()
        ctx = self._ctx()
        run = JobRun(_jobs.run(ctx, self.to_dict(), self._acl, self.update_existing),
                     self.environment.value)
        self.version, self.last_run = run["version"], run
        ensure_daemon(ctx.home)
        return run

    def start(self) -> JobRun | None:
        """Start the current version (a running service is left running); return the run.

        In a job's process importing its own code this starts nothing (see ``run``).
        """
        if own_code.importing():
            return self._existing_run()
        ctx = self._ctx()
        run = JobRun(_jobs.start(ctx, self.job_name), self.environment.value)
        self.last_run = run
        ensure_daemon(ctx.home)
        return run

    def stop(self) -> list[dict]:
        """Stop the job's active runs (a service, app or add-in stays stopped).

        Starts the daemon if it is not running: it adopts the runs and stops them."""
        ctx = self._ctx()
        runs = _jobs.stop(ctx, self.job_name)
        ensure_daemon_for(ctx.home, runs=runs)
        return runs

    def restart(self) -> JobRun | None:
        """Stop the job's active runs and start it again; return the new run.

        In a job's process importing its own code this does nothing (see ``run``).
        """
        if own_code.importing():
            return self._existing_run()
        ctx = self._ctx()
        run = JobRun(_jobs.restart(ctx, self.job_name), self.environment.value)
        self.last_run = run
        ensure_daemon(ctx.home)
        return run

    def _existing_job(self) -> dict | None:
        try:
            job = _jobs.get(self._ctx(), self.job_name)
        except (KeyError, PermissionError):  # none, or not ours to see: nothing to return
            return None
        self.version = job["version"]
        return job

    def _existing_run(self) -> JobRun | None:
        if self._existing_job() is None:
            return None
        latest = _jobs.runs(self._ctx(), self.job_name, limit=1)
        self.last_run = JobRun(latest[0], self.environment.value) if latest else None
        return self.last_run

    def promote(self, version: int | None = None) -> dict:
        """Copy the current version (or ``version``) to the next environment (needs PROMOTE)."""
        return _jobs.promote(self._ctx(), self.job_name, version)

    def versions(self) -> list[dict]:
        """Every saved version, oldest first, the current one marked."""
        return _jobs.versions(self._ctx(), self.job_name)

    def set_version(self, version: int) -> dict:
        """Make an older version current again."""
        return _jobs.set_version(self._ctx(), self.job_name, version)

    def runs(self, state: str | None = None, limit: int = 50, offset: int = 0) -> list[dict]:
        """The job's runs, newest first."""
        return _jobs.runs(self._ctx(), self.job_name, state=state, limit=limit, offset=offset)

    def wait(self, timeout: float | None = None) -> dict:
        """Wait until the latest run ends; return it (TimeoutError after ``timeout`` s)."""
        ctx = self._ctx()
        return _jobs.wait(ctx, _logs.resolve_run(ctx, job=self.job_name), timeout)

    def logs(
        self, tail: int | None = None, follow: bool = False, stderr: bool = False
    ) -> str | Iterator[str]:
        """The latest run's output: text, or with ``follow`` an iterator of lines that ends
        when the run does."""
        ctx = self._ctx()
        if follow:
            return _logs.follow(ctx, job=self.job_name, stderr=stderr, tail=tail)
        return _logs.read(ctx, job=self.job_name, stderr=stderr, tail=tail)

    def delete(self) -> None:
        """Remove the job, its versions, runs and logs (refused while it runs)."""
        _jobs.rm(self._ctx(), self.job_name)

    @property
    def status(self) -> str:
        """What the job is doing: "never run", "pending" ... "running", "succeeded",
        "failed", "killed", "lost", "crash-looping" or "stopped"."""
        try:
            return _jobs.get(self._ctx(), self.job_name)["status"]
        except KeyError:
            return "not saved"

    def get(self) -> dict:
        """The saved job: type, current version, status and definition."""
        return _jobs.get(self._ctx(), self.job_name)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, environment={self.environment.value!r},"
                f" entrypoint={_reference(self._entrypoint)!r})")


def _reference(entrypoint: dict) -> str:
    return f"{entrypoint['module']}:{entrypoint['qualname']}" if entrypoint.get("qualname") else entrypoint["module"]


def _environment(environment: object) -> str:
    return environments.normalise(environment)


def _run_as_name(run_as: object) -> str | None:
    if run_as is None:
        return None
    name = getattr(run_as, "name", run_as)
    if not isinstance(name, str) or not name:
        raise ValueError(f"invalid run_as {run_as!r}: use a user name or a User")
    return name


class App(_Job):
    """Represents a web application or a dashboard deployment on Datatailr (streamlit, dash,
    flask, fastapi, panel, ...). Locally it is served on a free port of 127.0.0.1; its URL
    is ``url`` once it runs."""

    _type = "app"

    def __init__(
        self,
        name: str,
        entrypoint: Callable,
        environment: Environment | None = Environment.DEV,
        image: Any = None,
        run_as: Any = None,
        resources: Resources = Resources(),
        acl: Any = None,
        framework: str | None = None,
        python_version: str = "3.12",
        python_requirements: str | list[str] = "",
        build_script_pre: str = "",
        build_script_post: str = "",
        env_vars: dict[str, str | int | float | bool] = {},  # noqa: B006 - the reference's default
        update_existing: bool = False,
        *,
        app_section: str | None = None,
    ):
        """Initialize an App deployment.

        Args:
            name: Display name for the app.
            entrypoint: The callable (function) that starts the application (or, as the
                published SDK allows, the app's module).
            environment: Target environment for the deployment.
            image: Pre-configured container Image. When None, an image is built from
                python_version, python_requirements, and the build scripts.
            run_as: User or username to run the app as. Defaults to the signed-in user.
            resources: CPU and memory resources for the container.
            acl: Access control list. Defaults to every permission for the current user.
            framework: Optional framework name (e.g., 'streamlit', 'dash', 'flask'). If not
                provided, the framework is inferred from the entrypoint.
            python_version: Python version for the container image.
            python_requirements: Python dependencies (see Image).
            build_script_pre: Dockerfile commands to run before installing requirements.
            build_script_post: Dockerfile commands to run after installing requirements.
            env_vars: Environment variables passed to the running container.
            update_existing: If True, load and update an existing job definition with the
                same name (even one of another type).
            app_section: The launcher section (published SDK; kept in the definition).
        """
        super().__init__(name, entrypoint, environment, image, run_as, resources, acl, framework,
                         python_version, python_requirements, build_script_pre, build_script_post,
                         env_vars, update_existing)
        if self.framework is None:
            self.framework = entrypoints.infer_framework(self._entrypoint)
        self.app_section = app_section

    def to_dict(self) -> dict:
        out = super().to_dict()
        if self.app_section is not None:
            out["app_section"] = self.app_section
        return out

    @property
    def url(self) -> str | None:
        """The app's local URL while it runs, else None."""
        try:
            return _jobs.get(self._ctx(), self.job_name)["url"]
        except KeyError:
            return None


class _NoFramework(_Job):
    def __init__(
        self,
        name: str,
        entrypoint: Callable,
        environment: Environment | None = Environment.DEV,
        image: Any = None,
        run_as: Any = None,
        resources: Resources = Resources(),
        acl: Any = None,
        python_version: str = "3.12",
        python_requirements: str | list[str] = "",
        build_script_pre: str = "",
        build_script_post: str = "",
        env_vars: dict[str, str | int | float | bool] = {},  # noqa: B006 - the reference's default
        update_existing: bool = False,
    ):
        super().__init__(name, entrypoint, environment, image, run_as, resources, acl, None,
                         python_version, python_requirements, build_script_pre, build_script_post,
                         env_vars, update_existing)

    @property
    def url(self) -> str | None:
        """The local URL the job serves on while it runs (its PORT), else None."""
        try:
            return _jobs.get(self._ctx(), self.job_name)["url"]
        except KeyError:
            return None


class Service(_NoFramework):
    """Represents a long-running background service deployment on Datatailr.

    A service runs continuously (an API server, a message consumer, any always-on
    process). It is restarted automatically if it exits.

    Args:
        name: Display name for the service.
        entrypoint: The callable (function) that starts the service.
        environment: Target environment for the deployment.
        image: Pre-configured container Image.
        run_as: User or username to run the service as.
        resources: CPU and memory resources for the container.
        acl: Access control list.
        python_version: Python version for the container image.
        python_requirements: Python dependencies (see Image).
        build_script_pre: Dockerfile commands to run before installing requirements.
        build_script_post: Dockerfile commands to run after installing requirements.
        env_vars: Environment variables passed to the running container.
        update_existing: If True, update an existing job definition.
    """

    _type = "service"


class ExcelAddin(_NoFramework):
    """Represents an Excel add-in deployment on Datatailr: the entrypoint's functions are
    callable as worksheet functions (locally: over HTTP, POST JSON arguments).

    Arguments as for ``Service``.
    """

    _type = "excel"


class BatchJob(_NoFramework):
    """One function run as a batch job (localtailr's addition beside the SDK's names).

    ``run()`` saves it and starts one run; ``wait()`` waits for it. ``schedule`` (a
    Schedule) makes the daemon's scheduler start it.
    """

    _type = "batch"

    def __init__(
        self,
        name: str,
        entrypoint: Callable,
        environment: Environment | None = Environment.DEV,
        image: Any = None,
        run_as: Any = None,
        resources: Resources = Resources(),
        acl: Any = None,
        python_version: str = "3.12",
        python_requirements: str | list[str] = "",
        build_script_pre: str = "",
        build_script_post: str = "",
        env_vars: dict[str, str | int | float | bool] = {},  # noqa: B006 - the reference's default
        update_existing: bool = False,
        *,
        schedule: Any = None,
    ):
        super().__init__(name, entrypoint, environment, image, run_as, resources, acl,
                         python_version, python_requirements, build_script_pre, build_script_post,
                         env_vars, update_existing)
        if schedule is not None and not callable(getattr(schedule, "to_dict", None)):
            raise ValueError(f"invalid schedule {schedule!r}: use a Schedule")
        self.schedule = schedule

    def _schedule_dict(self) -> dict | None:
        return self.schedule.to_dict() if self.schedule is not None else None

    def run(self, **params: Any) -> JobRun | None:
        """Save the definition as a new version and start one run with ``params`` (seen by
        the job as ``DATATAILR_BATCH_ARG_<NAME>``); return the run. In a job's process
        importing its own code it deploys nothing and returns the latest run."""
        if own_code.importing():
            return self._existing_run()
        ctx = self._ctx()
        run = JobRun(_jobs.run(ctx, self.to_dict(), self._acl, self.update_existing, params=params),
                     self.environment.value)
        self.version, self.last_run = run["version"], run
        ensure_daemon(ctx.home)
        return run

    url = None  # a batch job serves nothing


__all__ = ["App", "BatchJob", "ExcelAddin", "Service"]
