"""Issue 2, the command line: the verbs, --json, --env, --as, and errors as one line."""

import json

import pytest

from localtailr import KV, Blob, Group, Secrets, User


def ok(result):
    assert result.returncode == 0, result.stderr
    return result


def js(result):
    return json.loads(ok(result).stdout)


def one_line_error(result, *words):
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_init_info_reset(cli, localtailr_home, tmp_path):
    fresh = tmp_path / "fresh-home"
    data = js(cli("init", "--json", "--home", str(fresh)))
    assert data["home"] == str(fresh) and data["schema_version"] >= 1
    assert (fresh / "state.db").exists() and (fresh.stat().st_mode & 0o777) == 0o700
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        if (fresh / name).exists():
            assert ((fresh / name).stat().st_mode & 0o777) == 0o600, name
    info = js(cli("info", "--json", "--home", str(fresh)))
    assert info["users"] == 1 and info["groups"] == 1 and info["user"] == "root"
    assert "schema_version" in ok(cli("info", "--home", str(fresh))).stdout
    one_line_error(cli("reset", "--home", str(fresh)), "--yes")
    assert fresh.exists()
    ok(cli("reset", "--yes", "--home", str(fresh)))
    assert not fresh.exists()


def test_global_home_option(cli, tmp_path):
    other = tmp_path / "other"
    ok(cli("--home", str(other), "kv", "put", "k", "v"))
    assert js(cli("--home", str(other), "kv", "get", "k", "--json"))["value"] == "v"
    one_line_error(cli("kv", "get", "k"), "'k'", "not found")  # the fixture's home is another


def test_user_verbs(cli):
    made = js(cli("user", "add", "alice", "--first-name", "Alice", "--last-name", "A",
                  "--email", "alice@example.com", "--json"))
    assert made["name"] == "alice" and made["first_name"] == "Alice"
    assert js(cli("user", "get", "alice", "--json"))["user_id"] == made["user_id"]
    assert js(cli("user", "get", str(made["user_id"]), "--json"))["name"] == "alice"
    assert [u["name"] for u in js(cli("user", "ls", "--json"))] == ["root", "alice"]
    assert "alice" in ok(cli("user", "ls")).stdout
    assert cli("user", "exists", "alice").returncode == 0
    assert cli("user", "exists", "ghost").returncode == 1
    ok(cli("user", "add", "bot", "--system"))
    assert User.get("bot").is_system_user
    ok(cli("user", "add", "pw", "--password", input="s3cret\n"))
    ok(cli("user", "disable", "alice"))
    one_line_error(cli("--as", "alice", "kv", "ls"), "alice", "disabled")
    ok(cli("user", "enable", "alice"))
    ok(cli("user", "rm", "alice"))
    assert not User.exists("alice")


def test_group_verbs(cli):
    User.add("alice", "A", "B", "a@example.com", "pw")
    User.add("bob", "B", "C", "b@example.com", "pw")
    g = js(cli("group", "add", "analysts", "--json"))
    assert g["name"] == "analysts" and g["members"] == []
    ok(cli("group", "add-users", "analysts", "alice", "bob"))
    assert sorted(Group.get("analysts").members) == sorted(
        [User.get("alice").user_id, User.get("bob").user_id])
    ok(cli("group", "rm-users", "analysts", "bob"))
    assert js(cli("group", "get", "analysts", "--json"))["members"] == [User.get("alice").user_id]
    assert [x["name"] for x in js(cli("group", "ls", "--json"))] == ["admin", "analysts"]
    assert cli("group", "exists", "analysts").returncode == 0
    assert cli("group", "exists", "nope").returncode == 1
    ok(cli("group", "rm", "analysts"))
    assert not Group.exists("analysts")


def test_kv_verbs_env_and_acls(cli):
    User.add("alice", "A", "B", "a@example.com", "pw")
    ok(cli("kv", "put", "db_url", "sqlite://dev", "--read", "alice"))
    ok(cli("kv", "put", "db_url", "sqlite://prod", "--env", "prod"))
    ok(cli("--env", "pre", "kv", "put", "db_url", "sqlite://pre"))
    ok(cli("kv", "put", "from_stdin", input="piped value"))
    assert ok(cli("kv", "get", "db_url")).stdout.strip() == "sqlite://dev"
    assert js(cli("kv", "get", "db_url", "--env", "prod", "--json")) == {
        "key": "db_url", "value": "sqlite://prod"}
    assert KV("pre").get("db_url") == "sqlite://pre"
    assert KV().get("from_stdin") == "piped value"
    listing = js(cli("kv", "ls", "--json"))
    assert [e["key"] for e in listing] == ["db_url", "from_stdin"]
    assert listing[0]["acl"] == {"read": ["user:alice"]}  # the given ACL, as given
    assert js(cli("kv", "acls", "db_url", "--json")) == {"read": ["user:alice"]}
    assert ok(cli("--as", "alice", "kv", "get", "db_url")).stdout.strip() == "sqlite://dev"
    ok(cli("kv", "add-acls", "db_url", "--write", "alice"))
    assert "user:alice" in js(cli("kv", "acls", "db_url", "--json"))["write"]
    ok(cli("kv", "set-acls", "db_url", "--read", "root", "--write", "root"))
    assert js(cli("kv", "acls", "db_url", "--json")) == {"read": ["user:root"], "write": ["user:root"]}
    # --as: alice lost her rights
    one_line_error(cli("--as", "alice", "kv", "get", "db_url"), "'alice'", "READ", "kv/dev/db_url")
    assert js(cli("kv", "ls", "--as", "alice", "--json")) == []
    ok(cli("kv", "rm", "db_url"))
    one_line_error(cli("kv", "get", "db_url"), "not found")


def test_secret_verbs(cli):
    ok(cli("secret", "put", "token", input="tok-value\n"))
    assert Secrets().get("token") == "tok-value"
    assert ok(cli("secret", "get", "token")).stdout.strip() == "tok-value"
    assert ok(cli("kv", "get", "token", "--secure")).stdout.strip() == "tok-value"
    assert [e["key"] for e in js(cli("secret", "ls", "--json"))] == ["token"]
    assert "tok-value" not in ok(cli("secret", "ls")).stdout
    ok(cli("secret", "rm", "token"))
    assert Secrets().ls() == []
    one_line_error(cli("kv", "put", "token", "tok-value", "--secure"), "never from the command line")
    assert "tok-value" not in cli("kv", "put", "token", "tok-value", "--secure").stderr.split(":", 1)[0]


def test_blob_verbs(cli, tmp_path):
    src = tmp_path / "q1.csv"
    src.write_text("a,b\n1,2\n")
    info = js(cli("blob", "put", "reports/q1.csv", str(src), "--json"))
    assert info["size"] == 8 and len(info["sha256"]) == 64
    ok(cli("blob", "put", "reports/stdin.txt", "-", input="from stdin"))
    assert Blob().get_blob("reports/stdin.txt") == b"from stdin"
    assert ok(cli("blob", "get", "reports/q1.csv")).stdout == "a,b\n1,2\n"
    out = tmp_path / "out.csv"
    ok(cli("blob", "get", "reports/q1.csv", str(out)))
    assert out.read_text() == "a,b\n1,2\n"
    assert [b["name"] for b in js(cli("blob", "ls", "reports", "--json"))] == [
        "reports/q1.csv", "reports/stdin.txt"]
    assert cli("blob", "exists", "reports/q1.csv").returncode == 0
    assert cli("blob", "exists", "reports/none").returncode == 1
    User.add("alice", "A", "B", "a@example.com", "pw")
    ok(cli("blob", "set-acl", "reports/q1.csv", "--read", "alice", "--write", "root"))
    assert js(cli("blob", "get-acl", "reports/q1.csv", "--json"))["read"] == ["user:alice"]
    assert ok(cli("--as", "alice", "blob", "get", "reports/q1.csv")).stdout == "a,b\n1,2\n"
    one_line_error(cli("--as", "alice", "blob", "rm", "reports/q1.csv"), "alice", "WRITE")
    ok(cli("blob", "rm", "reports/q1.csv"))
    assert not Blob().exists("reports/q1.csv")


@pytest.mark.parametrize("args, words", [
    (("user", "get", "ghost"), ["'ghost'", "does not exist"]),
    (("user", "add", "root"), ["already exists"]),
    (("user", "add", "bad name"), ["invalid user name"]),
    (("user", "add", "x", "--email", "nope"), ["invalid email"]),
    (("group", "get", "ghost"), ["'ghost'"]),
    (("group", "add-users", "admin", "ghost"), ["'ghost'"]),
    (("kv", "get", "missing"), ["'missing'", "not found"]),
    (("kv", "put", "k", "v", "--read", "ghost"), ["'ghost'"]),
    (("kv", "ls", "--env", "staging"), ["'staging'", "dev, pre, prod"]),
    (("--env", "qa", "kv", "ls"), ["'qa'"]),
    (("--as", "ghost", "kv", "ls"), ["'ghost'"]),
    (("secret", "get", "missing"), ["'missing'"]),
    (("blob", "put", "../escape", "/etc/hostname"), ["invalid blob name"]),
    (("blob", "get", "missing"), ["'missing'"]),
    (("blob", "rm", "a//b"), ["invalid blob name"]),
    (("blob", "get", "x", "/no/such/folder/file"), []),
    (("reset",), ["--yes"]),
])
def test_user_errors_are_one_line_on_stderr_with_exit_1(cli, args, words):
    if args[:2] == ("blob", "get") and args[2] == "x":
        Blob().put_blob("x", b"x")
    one_line_error(cli(*args), *words)


def test_wrong_secret_key_in_cli_is_one_line(cli):
    from cryptography.fernet import Fernet

    Secrets().put("token", "v")
    one_line_error(cli("secret", "get", "token", env={"LOCALTAILR_SECRET_KEY": Fernet.generate_key().decode()}),
                   "cannot be decrypted")


def test_non_admin_reset_is_refused(cli, localtailr_home):
    User.add("alice", "A", "B", "a@example.com", "pw")
    one_line_error(cli("--as", "alice", "reset", "--yes"), "alice")
    assert localtailr_home.home.db_path.exists()
