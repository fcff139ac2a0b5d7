"""The reference's examples run with only the import changed."""

from localtailr import ACL, KV, Blob, Group, Permission, Secrets, User


def test_reference_kv_example(localtailr_home):
    User.add("user1", "A", "One", "one@example.com", "pw")
    User.add("user2", "B", "Two", "two@example.com", "pw")
    Group.add("group1")
    kv = KV()
    kv.put("db_url", "postgresql://user:password@host:port/dbname")
    acls = ACL({Permission.READ: [User.get("user1"), Group.get("group1")],
                Permission.WRITE: [User.get("user2")]})
    kv.add_acl("db_url", acls)
    assert kv.get("db_url") == "postgresql://user:password@host:port/dbname"
    assert [e["key"] for e in kv.ls()] == ["db_url"]
    kv.set_acls("db_url", ACL(read=["user1", "group1"], write=["user2"]))
    got = {p: sorted(ids) for p, ids in kv.acls("db_url").to_dict().items()}
    assert got == {"read": sorted([User.get("user1").user_id, -Group.get("group1").group_id]),
                   "write": [User.get("user2").user_id]}
    kv.delete("db_url")
    assert kv.ls() == []


def test_reference_blob_and_secrets(localtailr_home):
    blob = Blob()
    blob.put_blob("greeting", b"Hello, world!")
    assert blob.get_blob("greeting") == b"Hello, world!"
    Secrets().put("database_password", "pw")
    assert Secrets().get("database_password") == "pw"
