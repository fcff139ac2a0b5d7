"""``dt system``, ``dt cost``, ``dt node`` — what one laptop answers — and the command groups
of the platform that have nothing to act on here, each refused with its reason.

localtailr is one node (this machine) that costs nothing: ``cost view`` lists every run
at zero cost, budgets cannot be created (nothing is ever spent), ``node ls`` shows this
host with its CPUs and memory.
"""

from __future__ import annotations

import os
import platform
import socket

from ..platform import jobs as job_ops
from . import filters
from .args import Args, spec
from .calling import LIST_OPTIONS, ctx, page

PROVIDER = "localtailr"
NODE_ID = 1


def provider(a: Args):
    return PROVIDER


def _node() -> dict:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    host = socket.gethostname()
    return {
        "id": NODE_ID, "name": host, "environment": "dev", "node_class": "local",
        "type": platform.machine(), "status": "running", "state": "running",
        "private_ip": "127.0.0.1", "host": host, "port": 0,
        "cpu": {"count": os.cpu_count() or 1}, "memory": {"total": total},
        "tags": {"provider": PROVIDER},
    }


def node_ls(a: Args):
    node = _node()
    if a.positionals and a.positionals[0] not in (node["name"], str(NODE_ID)):
        return []
    keep = filters.compile(a.opt("filter"), node.keys())
    return page([node] if keep(node) else [], a)


def node_jobs(a: Args):
    if a.positionals[0] not in (str(NODE_ID), _node()["name"]):
        raise ValueError(f"no node {a.positionals[0]!r}: this laptop is node {NODE_ID}")
    return [{"name": j["name"], "environment": j["environment"], "type": j["type"],
             "state": j["status"]} for j in job_ops.ls(ctx(a), all_environments=True)
            if j["status"] in job_ops.ACTIVE]


def node_ls_tags(a: Args):
    return _node()["tags"]


def node_get_tag(a: Args):
    return _node()["tags"].get(a.positionals[0])


def cost_view(a: Args):
    """Every run the caller may see, at zero cost (nothing is billed on a laptop)."""
    rows = job_ops.runs(ctx(a), limit=100_000, all_environments=True)
    return [{"job_name": r["job"], "environment": r["environment"], "run_id": r["run_id"],
             "cost": 0.0} for r in rows]


def cost_list_budgets(a: Args):
    return []


_BUDGETS = "localtailr costs nothing, so it keeps no budgets"
_ONE_NODE = "localtailr runs on this one machine; it has no other nodes to manage"
_NOT_HERE = "has no local counterpart on localtailr"
COMMANDS = {
    "system": {"provider": (spec(), provider)},
    "cost": {
        "view": (spec("", "json pretty", "begin end"), cost_view),
        "list-budgets": (spec("", "json pretty"), cost_list_budgets),
    },
    "node": {
        "ls": (spec("node_name", "json pretty", LIST_OPTIONS, min=0), node_ls),
        "jobs": (spec("instance_id", "json pretty"), node_jobs),
        "ls-tags": (spec("", "json pretty", "node"), node_ls_tags),
        "get-tag": (spec("key", "pretty", "node"), node_get_tag),
    },
    "dns": {}, "email": {}, "sms": {}, "registry": {}, "settings": {}, "view": {},
}
UNSUPPORTED = {
    "system": {"*": "is a platform administration command; localtailr has one local process "
                    "and no servers, licence or quotas"},
    "cost": {"*": _BUDGETS},
    "node": {"*": _ONE_NODE},
    "dns": {"*": f"{_NOT_HERE}: services are reached on 127.0.0.1 ports"},
    "email": {"*": f"{_NOT_HERE}: localtailr sends no email"},
    "sms": {"*": f"{_NOT_HERE}: localtailr sends no SMS"},
    "registry": {"*": f"{_NOT_HERE}: images are local virtualenvs ('localtailr image ls')"},
    "settings": {"*": f"{_NOT_HERE}: use dt kv for settings"},
    "view": {"*": f"{_NOT_HERE}: use dt job runs and dt job ls"},
}
