"""``Schedule``: the SDK's name for the schedule helpers, which are core rules (``core.schedule``)
shared by every face (the ``dt`` face compiles ``dt job cron`` with them)."""

from ..core.schedule import Schedule

__all__ = ["Schedule"]
