"""Building many small objects at once without the cyclic collector's super-linear cost."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large result (lists, dicts, ACLs without
    cycles) is built, then restore it as it was.

    Each collection of the oldest generation walks every object alive, so building N objects
    costs O(N) collections of a heap that grows with N: super-linear. The objects built here
    hold no reference cycles, so reference counting frees them all the same."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
