"""Entrypoints for the audit tests (tests/test_audit_*.py): plain functions."""

import os
import sys
import time
from pathlib import Path


def stderr_ticker():
    """Five lines on stderr (one on stdout), then one more once MARK_FILE exists."""
    print("out only", flush=True)
    for i in range(1, 6):
        print(f"e{i}", file=sys.stderr, flush=True)
    mark = Path(os.environ["MARK_FILE"])
    deadline = time.monotonic() + 120
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    print("late", file=sys.stderr, flush=True)


def read_kv_and_secret():
    """What a job's own code sees of the KV and the secrets."""
    from localtailr import KV, Secrets

    print(os.environ["DATATAILR_JOB_ENVIRONMENT"], KV().get("db"), Secrets().get("pw"), flush=True)
