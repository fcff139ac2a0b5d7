"""A run's states and the moves between them.

::

    pending ──▶ building ──▶ starting ──▶ running ──▶ succeeded | failed | killed | lost
       │  ▲         │  ▲          │                          ▲
       │  └─────────┘  └──────────┘ (re-queued after a daemon restart)
       └──▶ skipped | any end state (stopped, or decided, before it started)

A run is created ``pending`` (a workflow's task may be created already ``skipped`` or,
reused from an earlier run, ``succeeded``). An end state is final. Re-stating the state a
run is in is allowed (it records a new event and reason: ``building`` again when a build
is retried, ``killed`` again with the exit code once the process is gone).
"""

from __future__ import annotations

ACTIVE = ("pending", "building", "starting", "running")
TERMINAL = ("succeeded", "failed", "killed", "lost", "skipped")
STATES = ACTIVE + TERMINAL
CREATED_AS = ("pending", "skipped", "succeeded")

# the job types whose runs are kept running (restarted when they end)
LONG_RUNNING = ("service", "app", "excel")

_ENDS = {"succeeded", "failed", "killed", "lost"}
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"pending", "building", "starting", "running", "skipped"} | _ENDS),
    "building": frozenset({"building", "pending", "starting", "running"} | _ENDS),
    "starting": frozenset({"starting", "pending", "running"} | _ENDS),
    "running": frozenset({"running"} | _ENDS),
    **{state: frozenset({state}) for state in TERMINAL},
}


class TransitionError(ValueError):
    """A state or move the table does not allow."""


def check_state(state: object) -> str:
    """``state`` if it is a run state; TransitionError otherwise."""
    if state not in STATES:
        raise TransitionError(f"unknown run state {state!r}: expected one of {', '.join(STATES)}")
    return state


def allowed(current: str, new: str) -> bool:
    """Whether a run in ``current`` may move to ``new``."""
    return new in TRANSITIONS[check_state(current)] and check_state(new) == new
