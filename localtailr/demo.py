"""``make run`` and ``make demo``: the sandbox home with something to look at.

``python -m localtailr.demo`` seeds users, groups, keys, a secret and blobs, starts the
daemon with its status page, deploys a living demo (a scheduled workflow, a service, a
Flask app), prints the status page's URL with its token, and stops everything on Ctrl-C.
``--examples-only`` runs every folder of ``examples/`` against the home instead and
leaves the daemon up so the status page shows what they did. Seeding is idempotent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import ACL, KV, Blob, Group, Secrets, User, demo_jobs
from .core.home import Home
from .platform import blob as blob_ops
from .platform import kv as kv_ops
from .platform.context import context
from .runtime import client
from .sdk.job import App, Service
from .web import security

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def seed() -> None:
    """Two users, a group, a few keys, a secret and a blob."""
    for name, first, last in (("alice", "Alice", "Analyst"), ("bob", "Bob", "Builder")):
        if not User.exists(name):
            User.add(name, first, last, f"{name}@example.com", None)
    if not Group.exists("analysts"):
        Group.add("analysts")
    Group.get("analysts").add_users(["alice"])
    kv = KV()
    kv.put("greeting", "hello from localtailr")
    kv.put("db_url", "sqlite:///demo.db", ACL(read=["analysts", "bob"], write=["root"]))
    KV("prod").put("db_url", "postgresql://prod-db/warehouse")
    Secrets().put("warehouse_password", "correct horse battery staple")
    Blob().put_blob("reports/2026/q1.csv", "region,revenue\nnorth,120\nsouth,98\n")


def show() -> str:
    ctx = context()
    lines = [f"localtailr home: {Home.current().root}", "", "users:"]
    lines += [f"  {u.user_id:>3}  {u.name:<8} groups={','.join(u.groups) or '-'}" for u in User.ls()]
    lines += ["groups:"] + [f"  {g.group_id:>3}  {g.name:<8} members={g.members}" for g in Group.ls()]
    for env in ("dev", "prod"):
        keys = [e["key"] for e in kv_ops.ls(context(environment=env))]
        lines.append(f"keys in {env}: {', '.join(keys) or '-'}")
    secrets = ", ".join(e["key"] for e in kv_ops.ls(ctx, kv_ops.SECRETS))
    lines.append(f"secrets in dev: {secrets} (values encrypted)")
    lines += ["blobs:"] + [
        f"  {b['name']}  {b['size']} bytes  sha256 {b['sha256'][:12]}" for b in blob_ops.ls(ctx)
    ]
    return "\n".join(lines)


def deploy() -> None:
    """The living demo: a scheduled workflow (run once now), a service and a Flask app."""
    Service("Heartbeat", entrypoint=demo_jobs.heartbeat, python_version="auto").run()
    App("Hello App", entrypoint=demo_jobs.hello_app, framework="flask", python_version="auto").run()
    demo_jobs.price_report()


def status_url(home: Home) -> str:
    info = client.ensure_daemon(home, quiet=True)
    if not info.get("url"):
        return f"(the daemon runs without a status page: see {home.root / 'daemon.log'})"
    return f"{info['url'].rstrip('/')}/?token={security.token(home)}"


def run_examples(home: Home) -> int:
    failed = 0
    for script in sorted(EXAMPLES.glob("*/*.py")):
        print(f"\n== {script.parent.name}/{script.name}", flush=True)
        env = {**os.environ, "LOCALTAILR_HOME": str(home.root)}
        done = subprocess.run([sys.executable, str(script)], env=env)
        failed += done.returncode != 0
    return failed


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    home = Home.current().ensure()
    seed()
    print(show())

    if "--examples-only" in argv:
        failed = run_examples(home)
        print(f"\nstatus page: {status_url(home)}")
        print("(the daemon keeps running: `localtailr down` stops it)")
        return 1 if failed else 0

    client.ensure_daemon(home, quiet=True)
    deploy()
    print(f"\nstatus page: {status_url(home)}")
    print("a scheduled workflow, a service and a Flask app are running; Ctrl-C stops everything")
    stop = False

    def interrupted(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    while not stop and client.daemon_info(home) is not None:
        time.sleep(0.5)
    print("\nstopping the daemon and every run ...", flush=True)
    client.stop_daemon(home)
    print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
