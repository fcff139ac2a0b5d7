"""A rescan of a run's tree reads the children files of its members only (where the kernel
has them), not every process in /proc; it finds what a ppid map of a full scan finds,
children forked by a thread other than the main one included. Real processes."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from localtailr.runtime.process import procfs, supervised

TREE = """
import subprocess, sys, threading, time
def fork():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time;"
                  " subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
                  " time.sleep(600)"])
t = threading.Thread(target=fork); t.start(); t.join()
print("ready", flush=True)
time.sleep(600)
"""

pytestmark = pytest.mark.skipif(not procfs.has_child_files(), reason="no children files here")


def test_a_rescan_reads_the_children_files_of_the_tree_only(localtailr_home, monkeypatch):
    proc = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE,
                            start_new_session=True)
    try:
        assert proc.stdout.readline() == b"ready\n"
        root = psutil.Process(proc.pid)
        expected = {proc.pid}
        for _ in range(600):  # the grandchild forked by the first child, once it has
            expected = {proc.pid} | {p.pid for p in root.children(recursive=True)}
            if len(expected) == 4:
                break
            psutil.wait_procs([], timeout=0.05)
        assert len(expected) == 4
        sv = supervised.Supervised(localtailr_home.home, 1, 1, "service", proc.pid,
                                   root.create_time(), None, "", None, proc=proc)
        scans: list[int] = []
        monkeypatch.setattr(procfs.os, "listdir",
                            lambda path, real=procfs.os.listdir: scans.append(path == "/proc")
                            or real(path))
        sv.sample(1000.0, procfs.child_lists())
        assert set(sv.tree) == expected
        assert scans and not any(scans)  # only /proc/<pid>/task of the members
        assert set(sv.tree) == {proc.pid} | _descendants(procfs.ppid_map(), proc.pid)
        sv.close()
    finally:
        for p in psutil.Process(proc.pid).children(recursive=True):
            p.kill()
        proc.kill()
        proc.wait()


def _descendants(children: dict[int, list[int]], pid: int) -> set[int]:
    out: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), ()):
            out.add(child)
            stack.append(child)
    return out
