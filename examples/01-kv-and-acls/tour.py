"""Two users, one key, an ACL: who may read and who may write."""

import os

from localtailr import ACL, KV, Group, PermissionError, User


def act_as(name):
    os.environ["LOCALTAILR_USER"] = name


def main():
    act_as("root")
    for name in ("alice", "bob"):
        if not User.exists(name):
            User.add(name, name.title(), "Example", f"{name}@example.com", None)
    if not Group.exists("analysts"):
        Group.add("analysts")
    Group.get("analysts").add_users(["alice"])

    kv = KV()
    kv.put("warehouse_url", "postgresql://warehouse/analytics",
           ACL(read=["analysts"], write=["root"]))
    print("ACL of warehouse_url:", kv.acls("warehouse_url"))

    act_as("alice")
    print("alice reads:", kv.get("warehouse_url"))
    try:
        kv.put("warehouse_url", "postgresql://somewhere-else")
    except PermissionError as e:
        print("alice may not write:", e)

    act_as("bob")
    try:
        kv.get("warehouse_url")
    except PermissionError as e:
        print("bob may not read:", e)
    print("bob sees these keys:", [e["key"] for e in kv.ls()])

    act_as("root")
    assert kv.get("warehouse_url") == "postgresql://warehouse/analytics"
    print("the refused write changed nothing:", kv.get("warehouse_url"))


if __name__ == "__main__":
    main()
