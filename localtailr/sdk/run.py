"""``JobRun``: what ``.run()`` returns for a batch job, a service, an app or an add-in.

A run handle with the same verbs as a workflow's ``WorkflowRun``: ``state`` (read now),
``wait()``, ``logs()``, ``stop()``. It is also the run as a dict (``run["run_id"]`` …,
as it was when started), so code written against the earlier dict keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..platform import jobs as _jobs
from ..platform import logs as _logs
from .calling import caller


class JobRun(dict):
    """One run of a job: ``run_id``, ``state``, ``reason``, ``wait()``, ``logs()``, ``stop()``."""

    def __init__(self, run: dict, environment: str):
        super().__init__(run)
        self._environment = environment

    def _ctx(self):
        return caller(self._environment)

    @property
    def run_id(self) -> int:
        return self["run_id"]

    @property
    def job(self) -> str:
        return self["job"]

    def refresh(self) -> JobRun:
        """Read the run again (its dict keys follow)."""
        self.update(_jobs.get_run(self._ctx(), self.run_id, events=False))
        return self

    @property
    def state(self) -> str:
        """The run's state now: pending, building, starting, running, succeeded, failed …"""
        return self.refresh()["state"]

    @property
    def reason(self) -> str | None:
        """Why the run ended as it did (None while it runs or after a plain success)."""
        return self.refresh()["reason"]

    def wait(self, timeout: float | None = None) -> str:
        """Wait until the run ends; its final state. TimeoutError after ``timeout`` seconds."""
        self.update(_jobs.wait(self._ctx(), self.run_id, timeout))
        return self["state"]

    def logs(self, tail: int | None = None, follow: bool = False,
             stderr: bool = False) -> str | Iterator[str]:
        """What the run printed: text, or with ``follow`` an iterator of lines that ends when
        the run does."""
        if follow:
            return _logs.follow(self._ctx(), run_id=self.run_id, stderr=stderr, tail=tail)
        return _logs.read(self._ctx(), run_id=self.run_id, stderr=stderr, tail=tail)

    def stop(self) -> None:
        """Ask the run to stop (a service or app stays stopped)."""
        _jobs.stop(self._ctx(), self.job, run_id=self.run_id)

    def __int__(self) -> int:
        return self.run_id

    def __repr__(self) -> str:
        return f"JobRun(job={self.job!r}, run_id={self.run_id}, state={self.get('state')!r})"


__all__ = ["JobRun"]
