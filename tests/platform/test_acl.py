"""Issue 2, ACLs: both constructor forms, owner rights, round trips, and every data
operation checking the caller's rights without changing anything when it refuses."""

import builtins
import hashlib
import sqlite3

import pytest

import localtailr
from localtailr import ACL, KV, Blob, Group, Permission, Secrets, User


@pytest.fixture
def people(localtailr_home):
    for name in ("alice", "bob", "carol"):
        User.add(name, name.title(), "T", f"{name}@example.com", "pw")
    Group.add("readers").add_users(["bob"])
    return localtailr_home


def snapshot(home) -> tuple:
    """Everything in the database and the blob folder, to compare before and after."""
    conn = sqlite3.connect(home.db_path)
    dump = "\n".join(conn.iterdump())
    conn.close()
    files = sorted(
        (str(p.relative_to(home.blobs)), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in home.blobs.rglob("*") if p.is_file()
    )
    return dump, files


# --- constructing ACLs ------------------------------------------------------------


def test_acl_dict_form(people):
    acl = ACL({Permission.READ: [User.get("alice"), Group.get("readers")],
               Permission.WRITE: [User.get("bob")]})
    assert acl.to_dict() == {"read": [User.get("alice").user_id, -Group.get("readers").group_id],
                             "write": [User.get("bob").user_id]}


def test_acl_keyword_form_resolves_names_to_users_and_groups(people):
    acl = ACL(read=["alice", "readers"], write=["bob"])
    assert acl.to_dict() == {"read": [User.get("alice").user_id, -Group.get("readers").group_id],
                             "write": [User.get("bob").user_id]}
    assert acl == ACL({Permission.READ: [User.get("alice"), Group.get("readers")],
                       Permission.WRITE: [User.get("bob")]})


def test_acl_unknown_name_or_permission_is_a_clear_error(people):
    with pytest.raises(ValueError, match="'ghost'.*neither a user nor a group"):
        ACL(read=["alice", "ghost"])
    with pytest.raises(ValueError, match="unknown permission 'fly'"):
        ACL({"fly": ["alice"]})
    with pytest.raises(ValueError, match="999"):
        ACL.from_dict({"read": [999]})


def test_acl_round_trips_through_dicts(people):
    acl = ACL(read=["alice", "readers"], write=["bob"], operate=["carol"], access=["alice"],
              promote=["readers"])
    data = acl.to_dict()
    again = ACL.from_dict(data)
    assert again == acl and again.to_dict() == data
    assert {str(p) for p in again.permissions} == {"read", "write", "operate", "access", "promote"}
    assert ACL.from_dict(ACL.from_dict(data).to_dict()).to_dict() == data


def test_acl_stored_with_a_key_comes_back(people):
    acl = ACL(read=["alice", "readers"], write=["bob"])
    KV().put("k", "v", acl)
    assert KV().acls("k") == acl
    assert [e["key"] for e in KV().ls()] == ["k"] and KV().ls()[0]["acl"] == acl


# --- default rights ---------------------------------------------------------------


def test_resource_without_acl_gives_its_creator_every_permission(people, monkeypatch):
    monkeypatch.setenv("LOCALTAILR_USER", "alice")
    KV().put("mine", "v")
    Blob().put_blob("mine.txt", "v")
    alice = User.get("alice").user_id
    everything = {p: [alice] for p in ("read", "write", "operate", "access", "promote")}
    assert KV().acls("mine").to_dict() == everything
    assert Blob().get_acl("mine.txt").to_dict() == everything
    monkeypatch.setenv("LOCALTAILR_USER", "bob")
    assert KV().ls() == [] and Blob().ls() == []
    with pytest.raises(localtailr.PermissionError):
        KV().get("mine")
    with pytest.raises(localtailr.PermissionError):
        Blob().get_blob("mine.txt")


# --- every data operation checks rights ---------------------------------------------


def _setup_resources():
    """As root: a key, a secret and a blob that bob may read but not write; carol nothing."""
    acl = ACL(read=["readers", "root"], write=["root"])
    KV().put("db_url", "sqlite://", acl)
    Secrets().put("token", "s3cret-value", acl)
    Blob().put_blob("reports/q1.csv", b"a,b\n1,2\n", acl)


DENIED_WRITES = {
    "kv put": lambda: KV().put("db_url", "changed"),
    "kv delete": lambda: KV().delete("db_url"),
    "kv set_acls": lambda: KV().set_acls("db_url", ACL(write=["bob"])),
    "kv add_acl": lambda: KV().add_acl("db_url", ACL(write=["bob"])),
    "secret put": lambda: Secrets().put("token", "changed"),
    "secret delete": lambda: Secrets().delete("token"),
    "secret set_acls": lambda: Secrets().set_acls("token", ACL(write=["bob"])),
    "secret add_acl": lambda: Secrets().add_acl("token", ACL(write=["bob"])),
    "blob put_blob": lambda: Blob().put_blob("reports/q1.csv", b"changed"),
    "blob put": lambda: Blob().put("reports/q1.csv", b"changed"),
    "blob delete": lambda: Blob().delete("reports/q1.csv"),
    "blob set_acl": lambda: Blob().set_acl("reports/q1.csv", ACL(write=["bob"])),
}

DENIED_READS = {
    "kv get": lambda: KV().get("db_url"),
    "kv acls": lambda: KV().acls("db_url"),
    "secret get": lambda: Secrets().get("token"),
    "secret acls": lambda: Secrets().acls("token"),
    "blob get_blob": lambda: Blob().get_blob("reports/q1.csv"),
    "blob get": lambda: Blob().get("reports/q1.csv"),
    "blob get_acl": lambda: Blob().get_acl("reports/q1.csv"),
}


def _resource_of(op: str) -> str:
    return {"kv": "kv/dev/db_url", "secret": "secret/dev/token", "blob": "blob/reports/q1.csv"}[
        op.split()[0]
    ]


@pytest.mark.parametrize("op", sorted(DENIED_WRITES))
def test_write_without_write_is_denied_and_changes_nothing(people, monkeypatch, op):
    _setup_resources()
    before = snapshot(people.home)
    monkeypatch.setenv("LOCALTAILR_USER", "bob")  # holds READ through the group only
    with pytest.raises(localtailr.PermissionError) as info:
        DENIED_WRITES[op]()
    err = info.value
    assert isinstance(err, builtins.PermissionError)
    assert err.user == "bob" and err.permission == "write" and err.resource == _resource_of(op)
    assert "'bob'" in str(err) and "WRITE" in str(err) and _resource_of(op) in str(err)
    assert "s3cret-value" not in str(err)
    assert snapshot(people.home) == before


@pytest.mark.parametrize("op", sorted(DENIED_READS))
def test_read_without_read_is_denied_and_changes_nothing(people, monkeypatch, op):
    _setup_resources()
    before = snapshot(people.home)
    monkeypatch.setenv("LOCALTAILR_USER", "carol")
    with pytest.raises(localtailr.PermissionError) as info:
        DENIED_READS[op]()
    assert info.value.user == "carol" and info.value.permission == "read"
    assert info.value.resource == _resource_of(op)
    assert "s3cret-value" not in str(info.value)
    assert snapshot(people.home) == before


def test_get_file_without_read_writes_no_file(people, monkeypatch, tmp_path):
    _setup_resources()
    monkeypatch.setenv("LOCALTAILR_USER", "carol")
    with pytest.raises(localtailr.PermissionError):
        Blob().get_file("reports/q1.csv", tmp_path / "out.csv")
    assert list(tmp_path.glob("out*")) == [] and list(tmp_path.glob(".out*")) == []


def test_put_file_over_a_blob_without_write_is_denied(people, monkeypatch, tmp_path):
    _setup_resources()
    src = tmp_path / "new.csv"
    src.write_bytes(b"changed")
    before = snapshot(people.home)
    monkeypatch.setenv("LOCALTAILR_USER", "bob")
    with pytest.raises(localtailr.PermissionError):
        Blob().put_file("reports/q1.csv", src)
    assert snapshot(people.home) == before


def test_read_rights_allow_reading_only(people, monkeypatch, tmp_path):
    _setup_resources()
    monkeypatch.setenv("LOCALTAILR_USER", "bob")
    assert KV().get("db_url") == "sqlite://"
    assert Secrets().get("token") == "s3cret-value"
    assert Blob().get_blob("reports/q1.csv") == b"a,b\n1,2\n"
    Blob().get_file("reports/q1.csv", tmp_path / "q1.csv")
    assert (tmp_path / "q1.csv").read_bytes() == b"a,b\n1,2\n"
    assert [e["key"] for e in KV().ls()] == ["db_url"]
    assert Blob().ls() == ["reports/q1.csv"]
    monkeypatch.setenv("LOCALTAILR_USER", "carol")
    assert KV().ls() == [] and Secrets().ls() == [] and Blob().ls() == []


def test_granting_write_lets_a_user_write_and_change_the_acl(people, monkeypatch):
    _setup_resources()
    KV().add_acl("db_url", ACL(write=["bob"]))
    monkeypatch.setenv("LOCALTAILR_USER", "bob")
    KV().put("db_url", "by bob")
    KV().set_acls("db_url", ACL(read=["carol"], write=["bob"]))
    monkeypatch.setenv("LOCALTAILR_USER", "carol")
    assert KV().get("db_url") == "by bob"
    with pytest.raises(localtailr.PermissionError):
        KV().delete("db_url")


def test_add_acl_with_entity_and_permission(people):
    KV().put("k", "v")
    KV().add_acl("k", "alice", Permission.READ)
    assert User.get("alice").user_id in KV().acls("k").to_dict()["read"]


def test_acl_naming_unknown_ids_is_refused_and_changes_nothing(people):
    KV().put("k", "v")
    before = snapshot(people.home)
    from localtailr.platform import kv as kv_ops
    from localtailr.platform.context import context

    with pytest.raises(ValueError, match="does not exist"):
        kv_ops.set_acls(context(), "k", {"read": [12345]})
    with pytest.raises(ValueError, match="unknown permission"):
        kv_ops.set_acls(context(), "k", {"fly": [0]})
    assert snapshot(people.home) == before


def test_non_admin_cannot_create_secrets(people, monkeypatch):
    monkeypatch.setenv("LOCALTAILR_USER", "alice")
    with pytest.raises(localtailr.PermissionError, match="alice"):
        Secrets().put("mine", "x")
    monkeypatch.delenv("LOCALTAILR_USER")
    assert Secrets().ls() == []
