"""Entrypoints for the job tests: plain functions in an importable module."""

import os
import sys
import time


def hello():
    print("hello from a batch job", flush=True)


def serve():
    print("service up", os.environ.get("DATATAILR_JOB_NAME"), flush=True)
    while True:
        time.sleep(0.2)


def fail():
    print("about to fail", file=sys.stderr, flush=True)
    raise SystemExit(3)


def show_environment():
    print(os.environ["DATATAILR_JOB_ENVIRONMENT"], os.environ["DATATAILR_JOB_NAME"],
          os.environ["DATATAILR_BATCH_ARG_RUNDATE"], flush=True)


def write_outside():
    """Write a file and a folder outside the home (the umask tests check their modes)."""
    with open(os.path.join(os.environ["PROBE_DIR"], "out.txt"), "w") as f:
        f.write("written by a job\n")
    os.mkdir(os.path.join(os.environ["PROBE_DIR"], "made"))
