"""``make run``: set up the sandbox home, seed a small demo, show what is there.

Seeding is idempotent: running it again leaves one copy of everything.
"""

from __future__ import annotations

import sys

from . import ACL, KV, Blob, Group, Secrets, User
from .home import Home
from .platform import blob as blob_ops
from .platform import kv as kv_ops
from .platform.context import context


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
    lines.append("secrets in dev: " + ", ".join(e["key"] for e in kv_ops.ls(ctx, kv_ops.SECRETS)) + " (values encrypted)")
    lines += ["blobs:"] + [f"  {b['name']}  {b['size']} bytes  sha256 {b['sha256'][:12]}" for b in blob_ops.ls(ctx)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    seed()
    print(show())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
