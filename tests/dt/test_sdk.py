"""The genuine datatailr SDK (0.2.3, unmodified) against localtailr through ``dt``: the rows
of the contract's table (reference/datatailr-dt-contract.md, 2.2) and its quirks."""

from __future__ import annotations

import pytest

CRON_ROWS = [  # the contract's table 1.16: D1 and D2 are the SDK's own docstring examples
    ("at_hours=[0]", "0 0 0 * * *"),
    ("at_hours=0", "0 0 0 * * *"),
    ("at_minutes=[0, 30]", "0 0,30 * * * *"),
    ("at_hours=[10, 22], at_minutes=[15]", "0 15 10,22 * * *"),
    ("every_hour=3", "0 0 */3 * * *"),
    ("at_hours=[6], at_minutes=[30], weekdays=['monday', 'FRIDAY'], timezone='Europe/Berlin'",
     "0 30 6 * * 1,5"),
    ("in_month=['Jan', 'Apr', 'Jul', 'Oct'], day_of_month=15, at_hours=[9]",
     "0 0 9 15 1,4,7,10 *"),
    ("every_month=2, day_of_month=1, at_hours=[0]", "0 0 0 1 */2 *"),
    ("in_month=['Jul'], weekdays=['Sun'], every_minute=[24], at_hours=[2, 15]",
     "0 */24 2,15 * 7 7"),
    ("at_minutes=[0, 15, 30, 45], at_hours=[0, 12], weekdays=['Mon', 'Wed', 'Fri'], "
     "day_of_month=15, in_month=['Jan', 'Jul']", "0 0,15,30,45 0,12 15 1,7 1,3,5"),
]


def test_users_groups_and_the_signed_user(sdk):
    got = sdk.value("""
        import json
        from datatailr import User, Group
        me = User.signed_user()
        alice = User.add("alice", "Alice", "Liddell", "alice@example.com", "pw")
        g = Group.add("analysts")
        g.add_users(["alice", "root"])
        g2 = Group.get("analysts")
        print(json.dumps({
            "me": [me.name, me.user_id, me.groups, me.is_system_user],
            "alice": [alice.name, alice.user_id, alice.email, alice.first_name],
            "by_id": User.get(2).name, "ls": sorted(u.name for u in User.ls()),
            "exists": [User.exists("alice"), User.exists("bob"), Group.exists("analysts")],
            "members": g2.members, "group_id": g2.group_id,
            "is_member": [g2.is_member(alice), g2.is_member(1)],
            "groups_of_alice": User.get("alice").groups,
        }))
    """)
    assert got["me"] == ["root", 1, ["admin"], True]
    assert got["alice"] == ["alice", 2, "alice@example.com", "Alice"]
    assert got["by_id"] == "alice" and got["ls"] == ["alice", "root"]
    assert got["exists"] == [True, False, True]
    assert got["members"] == [1, 2] and got["group_id"] == 2
    assert got["is_member"] == [True, True]
    assert got["groups_of_alice"] == ["analysts"]


def test_removing_users_and_groups(sdk):
    got = sdk.value("""
        import json
        from datatailr import User, Group
        User.add("tmp", "T", "U", "t@example.com", "pw")
        Group.add("crew").add_users(["tmp"])
        Group.get("crew").remove_users(["tmp"])
        members = Group.get("crew").members
        User.remove("tmp"); Group.remove("crew")
        print(json.dumps([members, User.exists("tmp"), Group.exists("crew")]))
    """)
    assert got == [[], False, False]


def test_kv_round_trip_and_acl_equality(sdk):
    got = sdk.value("""
        import json
        from datatailr import KV, ACL, Permission, User, Group
        User.add("alice", "A", "L", "a@example.com", "pw")
        Group.add("analysts")
        kv = KV()
        kv.put("greeting", "hello world")
        kv.put("answer", "42")
        kv.put("config", '{"a": 1}')
        acl = ACL({Permission.READ: [User.get("alice"), Group.get("analysts")],
                   Permission.WRITE: [User.signed_user()]})
        kv.put("shared", "v", acl=acl)
        print(json.dumps({"values": [kv.get("greeting"), kv.get("answer"), kv.get("config")],
                          "acl": {p: sorted(v) for p, v in kv.acls("shared").to_dict().items()},
                          "default_acl": kv.acls("answer").to_dict() == ACL().to_dict(),
                          "keys": sorted(r["key"] for r in kv.ls())}))
    """)
    assert got["values"] == ["hello world", 42, {"a": 1}]
    assert got["acl"] == {"read": [-2, 2], "write": [1]} and got["default_acl"]
    assert got["keys"] == ["answer", "config", "greeting", "shared"]


def test_kv_written_by_localtailr_read_by_the_sdk_and_back(sdk, localtailr_home):
    from localtailr import KV, Blob, Secrets

    KV().put("warehouse_url", "postgres://db")
    Secrets().put("api/token", "t0ps3cret")
    Blob().put("shared/from-localtailr.txt", b"made here")
    got = sdk.value("""
        import json
        from datatailr import KV, Blob, Secrets
        KV().put("from_sdk", "yes")
        Blob().put("shared/from-sdk.txt", "made there")
        print(json.dumps([KV().get("warehouse_url"), Blob().get("shared/from-localtailr.txt").decode(),
                          Secrets().get("api/token")]))
    """)
    assert got == ["postgres://db", "made here", "t0ps3cret"]
    assert KV().get("from_sdk") == "yes"
    assert Blob().get("shared/from-sdk.txt") == b"made there"


def test_secrets_are_read_only_and_scoped(sdk, localtailr_home):
    from localtailr import Secrets

    Secrets().put("db/password", "pw-dev")
    localtailr_home.use_environment("prod")
    Secrets().put("db/password", "pw-prod")
    localtailr_home.use_environment(None)
    got = sdk.value("""
        import json, os
        from datatailr import Secrets
        s = Secrets()
        name = s.set_env("db/password")
        print(json.dumps([s.get("db/password"), os.environ[name], name,
                          [r["key"] for r in s.ls()]]))
    """)
    assert got == ["pw-dev", "pw-dev", "DB_PASSWORD", ["db/password"]]
    prod = sdk.value("""
        import json
        from datatailr import Secrets
        print(json.dumps(Secrets().get("db/password")))
    """, DATATAILR_JOB_ENVIRONMENT="prod")
    assert prod == "pw-prod"


def test_blob_bytes_files_listing_and_acls(sdk, tmp_path):
    src = tmp_path / "in.bin"
    src.write_bytes(b"\x00\x01binary\xff" * 1000)
    got = sdk.value(f"""
        import json
        from datatailr import Blob, ACL, Permission, User
        b = Blob()
        b.put("mybucket/hello.bin", b"hello world")
        b.put("mybucket/text.txt", "unicode \u00e9")
        b.put_file("mybucket/data.bin", {str(src)!r})
        b.get_file("mybucket/data.bin", {str(tmp_path / "out.bin")!r})
        listing = sorted(b.ls("mybucket/"), key=lambda e: e["name"])
        b.delete("mybucket/hello.bin")
        print(json.dumps({{
            "text": b.get("mybucket/text.txt").decode(), "names": [e["name"] for e in listing],
            "sizes": [e["size"] for e in listing], "files": [e["is_file"] for e in listing],
            "exists": [b.exists("mybucket/hello.bin"), b.exists("mybucket/text.txt")],
            "acl_is_default": b.acls("mybucket/text.txt").to_dict() == ACL().to_dict(),
        }}))
    """)
    assert got["text"] == "unicode \u00e9"
    assert got["names"] == ["mybucket/data.bin", "mybucket/hello.bin", "mybucket/text.txt"]
    assert got["sizes"] == [src.stat().st_size, 11, len("unicode \u00e9".encode())]
    assert got["files"] == [True, True, True]
    assert got["exists"] == [False, True]
    assert got["acl_is_default"]
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()


@pytest.mark.parametrize("helpers, cron", CRON_ROWS)
def test_schedule_compiles_through_dt(sdk, helpers, cron):
    got = sdk.value(f"""
        import json
        from datatailr.scheduler import Schedule
        print(json.dumps(Schedule({helpers}).get_cron_string()))
    """)
    assert got == cron


def test_raw_cron_expression_survives_the_empty_cron_call(sdk):
    # the SDK calls `dt job cron` even without helpers and keeps its raw cron only when
    # the reply is not "<cron> (<description>)"
    got = sdk.value("""
        import json
        from datatailr.scheduler import Schedule
        print(json.dumps(Schedule(cron_expression="0 */5 * * * *").get_cron_string()))
    """)
    assert got == "0 */5 * * * *"


def test_quirks_of_the_sdk_are_tolerated(sdk):
    got = sdk.value("""
        import json
        from datatailr import KV, User, ACL
        from datatailr.utils import is_remote_cli_dt_installed, is_dt_installed
        KV().put("q", 'say "hi" now')                 # quotes inside a quoted positional
        u = User.add("carol", "C", "D", "c@example.com", "pw")   # sends --groups None
        empty = ACL.from_dict({})                       # {} means everything for the caller
        print(json.dumps([KV().get("q"), u.name, empty == ACL(), is_remote_cli_dt_installed(),
                          is_dt_installed()]))
    """)
    assert got == ['say "hi" now', "carol", True, True, False]


def test_cost_node_and_provider(sdk):
    got = sdk.value("""
        import json
        from datatailr import Node
        from datatailr.budget import Budget, Cost
        nodes = Node.ls()
        print(json.dumps([len(nodes), Cost.view(), Budget.ls()]))
    """)
    assert got[0] == 1 and got[1] == [] and got[2] == []
