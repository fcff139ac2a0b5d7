"""Issue 2, identity: users, groups, the signed-in user, the admin group."""

import pytest

import localtailr
from localtailr import KV, Group, User


def add_user(name, **kw):
    return User.add(name, kw.pop("first", name.title()), kw.pop("last", "Tester"),
                    f"{name}@example.com", "pw", **kw)


# --- users -------------------------------------------------------------------


def test_user_add_get_by_name_and_id_ls_exists_remove(localtailr_home):
    u = add_user("alice", first="Alice", last="Analyst")
    assert (u.name, u.first_name, u.last_name, u.email) == ("alice", "Alice", "Analyst", "alice@example.com")
    assert isinstance(u.user_id, int) and u.user_id > 0
    assert u.groups == [] and u.is_system_user is False
    assert User.get("alice") == u
    assert User.get(u.user_id).name == "alice"
    assert User("alice") == u and User(id=u.user_id) == u
    assert User.exists("alice") and not User.exists("nobody")
    assert [x.name for x in User.ls()] == ["root", "alice"]
    User.remove("alice")
    assert not User.exists("alice")
    assert [x.name for x in User.ls()] == ["root"]


def test_user_add_with_groups_and_verify(localtailr_home):
    Group.add("analysts")
    u = add_user("alice", groups=["analysts"])
    assert u.groups == ["analysts"]
    Group.get("analysts").remove_users(["alice"])
    assert u.groups == ["analysts"]  # a snapshot until verify()
    u.verify()
    assert u.groups == []


def test_user_add_unknown_group_adds_nothing(localtailr_home):
    with pytest.raises(ValueError, match="nogroup"):
        add_user("alice", groups=["nogroup"])
    assert not User.exists("alice")


def test_system_user_and_root(localtailr_home):
    svc = User.add("etl-bot", None, None, None, "ignored", is_system_user=True)
    assert svc.is_system_user is True
    root = User.get(0)
    assert root.name == "root" and root.is_system_user and "admin" in root.groups


def test_user_repr_is_the_reference_shape(localtailr_home):
    u = add_user("alice", first="Alice", last="Analyst")
    assert repr(u) == (
        f"User(name=alice, first_name=Alice, last_name=Analyst, email=alice@example.com,"
        f" user_id={u.user_id}, groups=[], is_system_user=False)"
    )
    assert repr(User.get("root")).startswith("User(name=root, first_name=Super User, last_name=, email=None, user_id=0,")
    assert "pw" not in repr(u)


def test_missing_user_is_value_error(localtailr_home):
    for call in (lambda: User.get("ghost"), lambda: User.get(999), lambda: User("ghost"),
                 lambda: User.remove("ghost"), lambda: User()):
        with pytest.raises(ValueError):
            call()


def test_duplicate_and_bad_names_refused(localtailr_home):
    add_user("alice")
    with pytest.raises(ValueError, match="already exists"):
        add_user("alice")
    for bad in ("", "-x", "a b", "a/b", "x" * 65, "é", "alice2\n", "bob\n"):
        with pytest.raises(ValueError, match="invalid user name"):
            User.add(bad, "a", "b", "a@example.com", "pw")
    with pytest.raises(ValueError, match="email"):
        User.add("bob", "a", "b", "not-an-email", "pw")
    assert [x.name for x in User.ls()] == ["root", "alice"]


def test_root_cannot_be_removed(localtailr_home):
    with pytest.raises(ValueError, match="root"):
        User.remove("root")


def test_password_is_not_stored_in_plain_text(localtailr_home):
    User.add("alice", "A", "B", "a@example.com", "hunter2-unique-pw")
    raw = localtailr_home.home.db_path.read_bytes()
    wal = localtailr_home.home.db_path.with_name("state.db-wal")
    raw += wal.read_bytes() if wal.exists() else b""
    assert b"hunter2-unique-pw" not in raw


# --- the signed-in user --------------------------------------------------------


def test_signed_user_defaults_to_root(localtailr_home):
    me = User.signed_user()
    assert (me.name, me.user_id) == ("root", 0)


def test_signed_user_reads_the_variable_at_call_time(localtailr_home, monkeypatch):
    add_user("alice")
    add_user("bob")
    monkeypatch.setenv("LOCALTAILR_USER", "alice")
    assert User.signed_user().name == "alice"
    monkeypatch.setenv("LOCALTAILR_USER", "bob")
    assert User.signed_user().name == "bob"
    monkeypatch.delenv("LOCALTAILR_USER")
    assert User.signed_user().name == "root"


def test_unknown_signed_user_is_a_clear_error(localtailr_home, monkeypatch):
    monkeypatch.setenv("LOCALTAILR_USER", "ghost")
    with pytest.raises(ValueError, match="ghost.*LOCALTAILR_USER"):
        KV().put("k", "v")


def test_disabled_user_cannot_act(localtailr_home, monkeypatch):
    from localtailr.platform import users
    from localtailr.platform.context import context

    add_user("alice")
    KV().put("shared", "v", localtailr.ACL(read=["alice"], write=["alice"]))
    users.set_disabled(context(), "alice", True)
    monkeypatch.setenv("LOCALTAILR_USER", "alice")
    for call in (lambda: KV().get("shared"), lambda: KV().put("mine", "v"),
                 lambda: localtailr.Blob().put_blob("b", b"x")):
        with pytest.raises(localtailr.PermissionError, match="alice.*disabled"):
            call()
    monkeypatch.delenv("LOCALTAILR_USER")
    assert [e["key"] for e in KV().ls()] == ["shared"]
    assert not localtailr.Blob().exists("b")
    users.set_disabled(context(), "alice", False)
    monkeypatch.setenv("LOCALTAILR_USER", "alice")
    assert KV().get("shared") == "v"


def test_non_admin_cannot_manage_identity(localtailr_home, monkeypatch):
    add_user("alice")
    Group.add("g1")
    monkeypatch.setenv("LOCALTAILR_USER", "alice")
    for call in (lambda: add_user("mallory"), lambda: User.remove("root"), lambda: Group.add("g2"),
                 lambda: Group.get("admin").add_users(["alice"]), lambda: Group.remove("g1")):
        with pytest.raises(localtailr.PermissionError, match="alice"):
            call()
    monkeypatch.delenv("LOCALTAILR_USER")
    assert [u.name for u in User.ls()] == ["root", "alice"]
    assert [g.name for g in Group.ls()] == ["admin", "g1"]
    assert Group.get("admin").members == [0]


# --- groups --------------------------------------------------------------------


def test_group_add_get_ls_exists_remove(localtailr_home):
    g = Group.add("analysts")
    assert g.name == "analysts" and isinstance(g.group_id, int) and g.members == []
    assert Group.get("analysts") == g == Group("analysts")
    assert Group.get(g.group_id).name == "analysts"
    assert Group.exists("analysts") and not Group.exists("nope")
    assert [x.name for x in Group.ls()] == ["admin", "analysts"]
    Group.remove("analysts")
    assert not Group.exists("analysts")
    with pytest.raises(ValueError, match="admin"):
        Group.remove("admin")


def test_group_members_add_remove_is_member(localtailr_home):
    alice, bob = add_user("alice"), add_user("bob")
    g = Group.add("analysts")
    g.add_users(["alice", "bob"])
    assert g.members == sorted([alice.user_id, bob.user_id])
    assert g.is_member(alice) and g.is_member("bob") and g.is_member(bob.user_id)
    g.remove_users(["bob"])
    assert g.members == [alice.user_id]
    assert not g.is_member("bob")
    assert Group.get("analysts").members == [alice.user_id]
    assert User.get("alice").groups == ["analysts"]
    with pytest.raises(ValueError, match="ghost"):
        g.add_users(["alice", "ghost"])  # all or none
    assert Group.get("analysts").members == [alice.user_id]


def test_group_repr_and_from_dict(localtailr_home):
    g = Group.add("analysts")
    assert repr(g) == f"Group(name=analysts, members=[], group_id={g.group_id})"
    again = Group.from_dict(g.to_dict())
    assert again == g and again.name == "analysts" and again.members == []
    for missing in ("name", "members", "group_id"):
        data = g.to_dict()
        del data[missing]
        with pytest.raises(ValueError, match=missing):
            Group.from_dict(data)
    with pytest.raises(ValueError):
        Group.from_dict(["not", "a", "dict"])


def test_missing_group_is_value_error(localtailr_home):
    for call in (lambda: Group.get("ghost"), lambda: Group("ghost"), lambda: Group.get(999),
                 lambda: Group.remove("ghost")):
        with pytest.raises(ValueError, match="does not exist"):
            call()


def test_removing_a_user_leaves_groups_and_acls_clean(localtailr_home):
    alice = add_user("alice")
    g = Group.add("analysts")
    g.add_users(["alice"])
    KV().put("k", "v", localtailr.ACL(read=["alice"]))
    User.remove("alice")
    assert Group.get("analysts").members == []
    assert alice.user_id not in KV().acls("k").to_dict().get("read", [])


def test_admin_group_members_may_do_everything(localtailr_home, monkeypatch):
    add_user("alice")
    add_user("boss")
    Group.get("admin").add_users(["boss"])
    monkeypatch.setenv("LOCALTAILR_USER", "alice")
    KV().put("private", "alice's")  # only alice holds rights on it
    localtailr.Blob().put_blob("private.bin", b"alice's")
    monkeypatch.setenv("LOCALTAILR_USER", "boss")
    assert KV().get("private") == "alice's"
    KV().put("private", "changed by boss")
    assert localtailr.Blob().get_blob("private.bin") == b"alice's"
    add_user("carol")  # admins manage identity
    localtailr.Blob().delete("private.bin")
    KV().delete("private")
    assert KV().ls() == []

