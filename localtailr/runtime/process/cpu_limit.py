"""How a run's CPU is limited and its processes contained: a cgroup v2 of its own
(``cpu.max``) where this machine delegates one, else the throttle of ``supervised``."""

from __future__ import annotations

import os
from pathlib import Path

CORES = os.cpu_count() or 1


def _cgroup_v2_base() -> Path | None:
    root = Path("/sys/fs/cgroup")
    if not (root / "cgroup.controllers").exists():
        return None  # cgroup v1 or hybrid: no unified hierarchy with controllers here
    try:
        own = next(line.split("::", 1)[1].strip() for line in
                   Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::"))
    except (OSError, StopIteration):
        return None
    base = root / own.lstrip("/") / "localtailr"
    try:
        base.mkdir(exist_ok=True)
        if "cpu" not in (base / "cgroup.controllers").read_text().split():
            return None
        (base / "cgroup.subtree_control").write_text("+cpu")
        return base
    except OSError:
        return None


_limiting: list = []


def cpu_limiting() -> str:
    """How CPU limits are held on this machine: "cgroups v2" or "psutil throttle"."""
    if not _limiting:
        _limiting.append(_cgroup_v2_base())
    return "cgroups v2" if _limiting[0] is not None else "psutil throttle"


def containment() -> str:
    """How every process of a run is found and ended with the run: "cgroups v2" (a cgroup
    a run, where this machine delegates one) or "run marker + process tree" (the run's
    process group and session, its tree as sampled, and every process whose initial
    environment carries the run's ``LOCALTAILR_RUN_ID``, which forks inherit; fork server
    children write their run's id into that block)."""
    return "cgroups v2" if cpu_limiting() == "cgroups v2" else "run marker + process tree"


def cgroup_for(run_id: int, cpu: float | None, pid: int) -> Path | None:
    """The run's own cgroup (holding ``pid``, with ``cpu`` cores as its ``cpu.max``),
    where this machine delegates cgroups v2."""
    if cpu_limiting() != "cgroups v2":
        return None
    group = _limiting[0] / f"run-{run_id}"
    try:
        group.mkdir(exist_ok=True)
        if cpu is not None:
            period = 100_000
            (group / "cpu.max").write_text(f"{int(cpu * period)} {period}")
        (group / "cgroup.procs").write_text(str(pid))
        return group
    except OSError:
        return None


def cgroup_pids(group: Path | None) -> list[int]:
    if group is None:
        return []
    try:
        return [int(p) for p in (group / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []
