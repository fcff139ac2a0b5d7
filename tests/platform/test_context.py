"""``platform/context.py``: a context always knows whom to check."""

from __future__ import annotations

import pytest

from localtailr import store
from localtailr.platform.context import Context, context


def test_a_context_needs_its_caller_or_a_user(localtailr_home):
    conn = store.connection(localtailr_home.home)
    with pytest.raises(ValueError, match="needs its caller or the user"):
        Context(localtailr_home.home, conn, None, "dev")
    ctx = context(localtailr_home.home)
    given = Context(ctx.home, conn, ctx.caller, "dev")  # no user: the caller's name stands
    assert given.caller is ctx.caller and "user=root" in repr(given)

