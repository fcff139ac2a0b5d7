"""The ``dt`` face on its own: argument forms, output shapes, and bad input refused with one
line on stderr and nothing changed. (The SDK driving it: test_dt_sdk.py, test_dt_jobs.py.)"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from support.dt_support import api_commands
from support.imports import HEAVY, imported


def _snapshot(home) -> list:
    conn = sqlite3.connect(home / "state.db")
    try:
        return [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("users", "groups", "memberships", "kv", "secrets", "blobs", "acl",
                          "jobs", "job_versions", "runs")]
    finally:
        conn.close()


def _one_line_failure(proc, code: int | None = None) -> str:
    assert proc.returncode != 0, proc.stdout
    if code is not None:
        assert proc.returncode == code
    err = proc.stderr.decode() if isinstance(proc.stderr, bytes) else proc.stderr
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_json_shapes_of_identity(sdk):
    assert sdk.dt("user", "add", "alice", "--first-name", "Alice", "--last-name", "A",
                  "--email", "a@x.io", "--password", "pw", "--groups", "None",
                  "--json-enrichened").returncode == 0
    users = json.loads(sdk.dt("user", "ls", "--filter", "", "--json").stdout)
    assert {u["name"] for u in users} == {"root", "alice"}
    assert all(u["user_id"] > 0 for u in users)  # the SDK refuses id 0 in an ACL
    root = next(u for u in users if u["name"] == "root")
    assert root == {"name": "root", "user_id": 1, "first_name": "Super User", "last_name": "",
                    "email": "", "groups": "admin", "is_system": True}
    two = json.loads(sdk.dt("user", "ls", "--filter", "user_id = [1, 2]", "--json").stdout)
    assert [u["name"] for u in two] == ["root", "alice"]
    assert json.loads(sdk.dt("user", "ls", "--filter", "user_id = 2", "--json").stdout)[0][
        "name"] == "alice"
    assert sdk.dt("group", "add", "analysts", "--json-enrichened").returncode == 0
    assert sdk.dt("group", "add-users", "analysts", "alice,root").returncode == 0
    group = json.loads(sdk.dt("group", "get", "analysts", "--json").stdout)
    assert group == {"name": "analysts", "members": [1, 2], "group_id": 2}
    assert sdk.dt("user", "exists", "alice").stdout.strip() == b"true"
    assert sdk.dt("group", "exists", "nobody").stdout.strip() == b"false"
    signed = json.loads(sdk.dt("user", "signed-user").stdout)
    assert signed["name"] == "root"
    assert sdk.dt("user", "verify", "root", str(signed["expiry"]), signed["signature"]).stdout \
        .strip() == b"true"
    assert sdk.dt("user", "verify", "root", str(signed["expiry"]), "0" * 64).stdout.strip() \
        == b"false"


def test_signed_user_is_localtailr_user(sdk):
    sdk.dt("user", "add", "bob", "--groups", "None")
    assert json.loads(sdk.dt("user", "signed-user", LOCALTAILR_USER="bob").stdout)["name"] == "bob"
    assert json.loads(sdk.dt("user", "get", "bob", "--json").stdout)["user_id"] == 2


def test_kv_quoting_acls_and_listing(sdk):
    # the SDK wraps a positional holding a space in literal quotes: dt strips one pair
    assert sdk.dt("kv", "put", "greeting", '"hello world"').returncode == 0
    assert sdk.dt("kv", "get", "greeting", "--json").stdout == b"hello world\n"
    assert sdk.dt("kv", "put", "quoted", '""x""').returncode == 0
    assert sdk.dt("kv", "get", "quoted").stdout == b'"x"\n'
    sdk.dt("user", "add", "alice", "--groups", "None")
    sdk.dt("group", "add", "analysts")
    assert sdk.dt("kv", "put", "n", "42", "--users", "alice:r,root:rw",
                  "--groups", "analysts:r").returncode == 0
    assert json.loads(sdk.dt("kv", "acls", "n", "--json").stdout) == {
        "read": [-2, 1, 2], "write": [1]}
    listing = json.loads(sdk.dt("kv", "ls", "--acls", "--json").stdout)
    assert listing["total"] == 3 and {i["key"] for i in listing["items"]} == {
        "greeting", "quoted", "n"}
    assert all(set(i) >= {"key", "acl"} for i in listing["items"])


def test_kv_is_scoped_by_the_callers_environment(sdk):
    sdk.dt("kv", "put", "url", "dev-url")
    sdk.dt("kv", "put", "url", "prod-url", DATATAILR_JOB_ENVIRONMENT="prod")
    assert sdk.dt("kv", "get", "url").stdout.strip() == b"dev-url"
    assert sdk.dt("kv", "get", "url", DATATAILR_JOB_ENVIRONMENT="prod").stdout.strip() \
        == b"prod-url"


def test_blob_uris_stdin_stdout_and_cp(sdk, tmp_path):
    prefix = sdk.dt("tag", "get", "blob_storage_prefix").stdout.decode().strip()
    assert prefix == "local-"
    uri = f"blob://{prefix}user-data/reports/q1.bin"
    data = bytes(range(256)) * 10
    assert sdk.dt("blob", "put", uri, input=data).returncode == 0
    assert sdk.dt("blob", "get", uri).stdout == data
    out = tmp_path / "copy.bin"
    assert sdk.dt("blob", "cp", uri, str(out)).returncode == 0
    assert out.read_bytes() == data
    assert sdk.dt("blob", "cp", str(out), f"blob://{prefix}user-data/other.bin").returncode == 0
    top = json.loads(sdk.dt("blob", "ls", f"blob://{prefix}user-data/", "--filter", "",
                            "--batch-size", "-1", "--offset", "0", "--json").stdout)
    assert [(e["name"], e["is_file"]) for e in top] == [("other.bin", True), ("reports/", False)]
    deep = json.loads(sdk.dt("blob", "ls", f"blob://{prefix}user-data/", "--recursive",
                             "--json").stdout)
    assert {e["name"] for e in deep} == {"other.bin", "reports/q1.bin"}
    assert sdk.dt("blob", "exists", uri).stdout.strip() == b"true"
    assert sdk.dt("blob", "rm", uri).returncode == 0
    assert sdk.dt("blob", "exists", uri).stdout.strip() == b"false"


def test_unset_tag_is_empty_and_cron_compiles(sdk):
    proc = sdk.dt("tag", "get", "public_hostname")
    assert proc.returncode == 0 and proc.stdout == b""
    assert sdk.dt("job", "cron", "--at-minutes", "0,15,30,45", "--at-hours", "0,12", "--weekdays",
                  "Mon,Wed,Fri", "--day-of-month", "15", "--in-month", "Jan,Jul").stdout \
        .decode().startswith("0 0,15,30,45 0,12 15 1,7 1,3,5 (")


def test_local_node_zero_cost_and_provider(sdk):
    nodes = json.loads(sdk.dt("node", "ls", "--json").stdout)
    assert len(nodes) == 1 and nodes[0]["id"] == 1
    assert sdk.dt("system", "provider").stdout.strip() == b"localtailr"
    assert json.loads(sdk.dt("cost", "list-budgets", "--json").stdout) == []


@pytest.mark.parametrize("argv, code, words", [
    (["frobnicate"], 2, "unknown command"),
    (["kv", "frob"], 2, "unknown sub-command"),
    (["kv", "get"], 2, "expects"),
    (["kv", "get", "k", "--bogus"], 2, "unknown option --bogus"),
    (["kv", "get", "missing", "--json"], 1, "not found"),
    (["user", "ls", "--filter", "user_id = = 3", "--json"], 1, "filter"),
    (["job", "runs", "--filter", "color = red", "--json"], 1, "cannot filter on 'color'"),
    (["job", "save", "file:///does/not/exist.json"], 1, "cannot read"),
    (["blob", "get", "blob://elsewhere/x"], 1, "no bucket"),
    (["dns", "servers"], 1, "no local counterpart"),
    (["kv", "put", "k", "v", "--others", "rw"], 1, "everybody"),
])
def test_bad_input_is_one_line_and_changes_nothing(sdk, argv, code, words):
    before = _snapshot(sdk.home)
    line = _one_line_failure(sdk.dt(*argv), code)
    assert words in line
    assert _snapshot(sdk.home) == before


def test_malformed_job_json_saves_nothing(sdk, tmp_path):
    bad = tmp_path / "job.json"
    for text, words in (("{not json", "malformed job JSON"),
                        ('{"type": "batch", "name": "w", "jobs": []}', "tasks"),
                        ('{"type": "rocket", "name": "w"}', "type 'rocket'"),
                        ('{"type": "service", "name": "s", "entrypoint": "nocolon"}',
                         "entrypoint")):
        bad.write_text(text)
        before = _snapshot(sdk.home)
        assert words in _one_line_failure(sdk.dt("job", "save", f"file://{bad}", "--json"), 1)
        assert _snapshot(sdk.home) == before


def test_denied_access_is_refused_and_changes_nothing(sdk):
    sdk.dt("user", "add", "mallory", "--groups", "None")
    sdk.dt("kv", "put", "db_password", "s3cret")
    before = _snapshot(sdk.home)
    assert "lacks READ" in _one_line_failure(
        sdk.dt("kv", "get", "db_password", LOCALTAILR_USER="mallory"), 1)
    assert "lacks WRITE" in _one_line_failure(
        sdk.dt("kv", "put", "db_password", "mine", LOCALTAILR_USER="mallory"), 1)
    assert "lacks ADMIN" in _one_line_failure(
        sdk.dt("user", "add", "eve", LOCALTAILR_USER="mallory"), 1)
    assert _snapshot(sdk.home) == before
    assert sdk.dt("kv", "get", "db_password").stdout.strip() == b"s3cret"


def test_every_command_of_the_sdk_works_or_says_why(sdk, sdk_venv):
    """Each (command, sub-command) of the SDK's api.json, with its own example arguments:
    exit 0, or non-zero with exactly one line saying why."""
    api = api_commands(sdk_venv)
    seen = 0
    for cmd, definition in api.items():
        for sub, sub_def in (definition.get("sub_commands") or {}).items():
            example = (sub_def.get("non_options") or {}).get("arg_example") or []
            proc = sdk.dt(cmd, sub, *[str(e) for e in example], input=b"")
            if proc.returncode != 0:
                line = _one_line_failure(proc)
                assert line.startswith(f"dt {cmd}"), line
            seen += 1
    assert seen > 120  # every sub-command of 0.2.3 (133) was tried


def _imports(sdk, *argv: str) -> tuple[int, list[str]]:
    proc, names = imported([str(sdk.bin / "dt"), *argv], sdk.env())
    return proc.returncode, names


def test_calls_go_through_the_daemons_socket_when_it_runs(sdk, localtailr_home):
    sdk.dt("kv", "put", "answer", "42")
    code, names = _imports(sdk, "kv", "get", "answer", "--json")
    assert code == 0 and "localtailr.platform.kv_quick" in names  # no daemon: run here,
    assert [m for m in HEAVY if m in names] == []  # without the dt face or the store
    code, names = _imports(sdk, "kv", "ls", "--json")
    assert code == 0 and "localtailr.platform.kv" in names  # anything else: the whole face
    localtailr_home.start_daemon()
    sock = sdk.home / "dt.sock"
    assert sock.exists() and sock.stat().st_mode & 0o777 == 0o600
    code, names = _imports(sdk, "kv", "get", "answer")
    assert code == 0 and "localtailr.platform" not in names  # the daemon ran it
    assert [m for m in HEAVY if m in names] == []
    assert sdk.dt("kv", "get", "answer").stdout == b"42\n"
    data = bytes(range(256)) * 100
    assert sdk.dt("blob", "put", "blob://local-user-data/b.bin", input=data).returncode == 0
    assert sdk.dt("blob", "get", "blob://local-user-data/b.bin").stdout == data
    denied = sdk.dt("kv", "get", "answer", LOCALTAILR_USER="nobody")
    assert denied.returncode == 1 and b"does not exist" in denied.stderr
    assert sdk.dt("kv", "get", "answer", DATATAILR_JOB_ENVIRONMENT="prod").returncode == 1


def test_kv_get_without_a_daemon_answers_as_the_whole_face(sdk, localtailr_home):
    """``dt kv get`` with no daemon reads the key without the dt face's imports; its
    output, errors and exit codes are the whole face's."""
    import subprocess
    import sys

    def whole(*argv: str, **env: str):
        code = "import sys; from localtailr.dt.main import run; sys.exit(run(sys.argv[1:]))"
        return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                              env=sdk.env(**env), timeout=60)

    for key, value in (("plain", "42"), ("lines", "a\nb\n"), ("empty", ""), ("sp ace", "x y")):
        assert sdk.dt("kv", "put", key, value).returncode == 0
    assert sdk.dt("user", "add", "ann").returncode == 0
    cases = [("kv", "get", "plain", "--json"), ("kv", "get", "lines"), ("kv", "get", "empty"),
             ("kv", "get", "sp ace", "--json"), ("kv", "get", '"sp ace"', "--json"),
             ("kv", "get", "missing", "--json"), ("kv", "get", "plain", "--pretty"),
             ("kv", "get", "plain", "--environment", "pre")]
    for argv in cases:
        for env in ({}, {"LOCALTAILR_USER": "ann"}, {"LOCALTAILR_USER": "nobody"},
                    {"DATATAILR_JOB_ENVIRONMENT": "pre"}):
            a, b = sdk.dt(*argv, **env), whole(*argv, **env)
            assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), (
                argv, env)
    assert sdk.dt("kv", "get", "lines").stdout == b"a\nb\n"
    assert sdk.dt("kv", "get", "plain", "--json").stdout == b"42\n"


def test_a_daemon_killed_leaves_dt_working(sdk, localtailr_home):
    import os
    import signal
    import time

    info = localtailr_home.start_daemon()
    assert sdk.dt("kv", "put", "k", "before").returncode == 0
    os.kill(info["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(info["pid"], 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    assert (sdk.home / "dt.sock").exists()  # left behind by kill -9
    assert sdk.dt("kv", "get", "k").stdout == b"before\n"  # refused socket: run here
    assert sdk.dt("kv", "put", "k", "after").returncode == 0
    info = localtailr_home.start_daemon()  # a new daemon replaces the stale socket
    code, names = _imports(sdk, "kv", "get", "k")
    assert code == 0 and "localtailr.platform" not in names
    assert sdk.dt("kv", "get", "k").stdout == b"after\n"


def test_saved_image_pins_the_sdk_and_drops_localtailr(sdk, tmp_path):
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "__init__.py").write_text("def serve(port):\n    pass\n")
    job = {"type": "service", "name": "s", "display_name": "S", "environment": "dev",
           "entrypoint": "svc:serve", "run_as": "root", "memory": "128m", "num_cpus": 0.25,
           "image": {"python_version": "3.11", "path_to_repo": str(tmp_path),
                     "path_to_module": "svc",
                     "python_requirements": "requests\nlocaltailr==0.1.0\n-e /src/localtailr"}}
    (tmp_path / "job.json").write_text(json.dumps(job))
    saved = json.loads(sdk.dt("job", "save", f"file://{tmp_path / 'job.json'}", "--json").stdout)
    assert saved["versions"] == {jobdef_id("s", "dev"): 1}
    image = json.loads(sdk.dt("job", "get", "s", "--environment", "dev", "--json").stdout)[0][
        "image"]
    assert image["python_requirements"] == "requests\ndatatailr==0.2.3"
    (tmp_path / "svc" / "__init__.py").write_text("def serve(port):\n    raise SystemExit\n")
    from localtailr.platform import jobs
    from localtailr.platform.context import context

    snap = jobs.get(context(), "s")["definition"]["datatailr"]["sys_path"]
    assert "pass" in (Path(snap) / "svc" / "__init__.py").read_text()  # the code as saved


def jobdef_id(name: str, environment: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.UUID("A3FB3D5A-1AD4-4341-AA66-BAC8A26ECBAD"), name + environment))


def test_a_jobs_dt_calls_through_the_daemon_are_recorded_as_that_runs(sdk, localtailr_home):
    """Lineage through the dt face: a job's ``dt`` hands its call to the daemon, which records
    the blob and key versions read and written as the calling run's, not as nobody's."""
    from support import jobs_entry

    from localtailr import BatchJob
    from localtailr.platform import blob_history, jobs, lineage
    from localtailr.platform.context import context

    localtailr_home.start_daemon()
    ctx = context()
    run_id = jobs.run(ctx, BatchJob("writer", jobs_entry.hello, python_version="auto").to_dict())["run_id"]
    jobs.wait(ctx, run_id, timeout=120)
    run = {"LOCALTAILR_RUN_ID": str(run_id)}
    assert sdk.dt("blob", "put", "blob://local-user-data/out.csv", input=b"a,b\n", **run).returncode == 0
    assert sdk.dt("kv", "put", "loaded", "yes", **run).returncode == 0
    assert sdk.dt("blob", "get", "blob://local-user-data/out.csv", **run).stdout == b"a,b\n"
    assert sdk.dt("blob", "put", "blob://local-user-data/plain.csv", input=b"x\n").returncode == 0
    names = {h["run_id"] for h in blob_history.history(ctx, "out.csv")}
    assert names == {run_id}
    assert {h["run_id"] for h in blob_history.history(ctx, "plain.csv")} == {None}
    io = lineage.run_io(ctx, run_id)
    assert "out.csv" in str(io["wrote"]) and "loaded" in str(io["wrote"])
    assert "out.csv" in str(io["read"])
