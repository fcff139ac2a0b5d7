"""Issue 13, the CLI and the Python API as a newcomer meets them.

One ACL text form with names; ``kv put --read`` says it replaced the ACL and ``--add-read``
adds; ``secret put NAME VALUE`` explains stdin; help that reads well; ``dir(localtailr)``;
shell completion; progress on a terminal only; every ``.run()`` a run handle; the status
page's port remembered per home.
"""

import json
import os
import pty
import select
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from support.images_support import offline  # noqa: F401

import localtailr
from localtailr import ACL, KV, BatchJob

EXE = str(Path(sys.executable).with_name("localtailr"))


def test_one_acl_text_with_names_everywhere(cli, localtailr_home):
    cli("user", "add", "alice", check=True)
    cli("group", "add", "analysts", check=True)
    KV().put("db_url", "x", ACL(read=["alice", "analysts"], write=["root"]))
    shown = str(KV().acls("db_url"))
    assert shown == "read: group:analysts, user:alice; write: user:root"  # names, not ids
    assert cli("kv", "acls", "db_url").stdout.strip() == shown
    assert cli("kv", "ls").stdout.splitlines()[1].split(None, 1)[1] == shown
    assert repr(KV().acls("db_url")) == f"ACL({shown})"
    cli("blob", "put", "r.csv", "-", input="a", check=True)
    cli("blob", "set-acl", "r.csv", "--read", "alice", "--read", "group:analysts", "--write", "root", check=True)
    assert cli("blob", "get-acl", "r.csv").stdout.strip() == shown  # the same form for a blob
    assert json.loads(cli("blob", "get-acl", "r.csv", "--json").stdout) == {
        "read": ["group:analysts", "user:alice"], "write": ["user:root"]}


def test_kv_put_says_it_replaced_the_acl_and_add_read_adds(cli, localtailr_home):
    cli("user", "add", "alice", check=True)
    cli("user", "add", "bob", check=True)
    first = cli("kv", "put", "db_url", "x", check=True).stdout
    assert "ACL: read: user:root" in first and "replaced" not in first
    added = cli("kv", "put", "db_url", "y", "--add-read", "alice", check=True).stdout
    assert "added read: user:alice" in added and "read: user:root, user:alice" in added
    replaced = cli("kv", "put", "db_url", "z", "--read", "bob", check=True).stdout
    assert "replaced the old ACL" in replaced and "--add-read" in replaced
    assert cli("kv", "acls", "db_url").stdout.strip() == "read: user:bob"
    both = cli("kv", "put", "db_url", "w", "--read", "bob", "--add-read", "alice")
    assert both.returncode == 1 and "not both" in both.stderr
    assert KV().get("db_url") == "z"  # a refused call changes nothing
    assert cli("kv", "add-acls", "db_url", "--read", "alice", check=True).stdout.strip() == \
        "read: user:alice, user:bob"


def test_secret_put_with_a_value_explains_stdin(cli, localtailr_home):
    done = cli("secret", "put", "api_token", "s3cret")
    assert done.returncode == 2
    assert "unexpected extra argument" not in done.stderr
    assert "read from stdin or a prompt" in done.stderr
    assert "echo -n VALUE | localtailr secret put NAME" in done.stderr
    assert "s3cret" not in done.stderr
    assert cli("secret", "put", "api_token", input="s3cret", check=True).returncode == 0


def test_help_reads_well(cli):
    for command in (("blob", "get-acl"), ("blob", "set-acl"), ("reset",), ("secret", "put")):
        out = cli(*command, "--help").stdout
        summary = out.split("\n\n")[1].strip()
        assert summary, command  # not empty
        assert "``" not in out, command  # not raw reST
    assert "localtailr blob set-acl reports/q1.csv --read alice" in cli("blob", "set-acl", "--help").stdout


def test_dir_of_the_package_lists_the_api_only():
    names = dir(localtailr)
    assert {"KV", "ACL", "BatchJob", "task", "workflow", "__version__"} <= set(names)
    assert not {"os", "importlib", "annotations"} & set(names)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts_generate(shell):
    env = {**os.environ, "_LOCALTAILR_COMPLETE": f"{shell}_source"}
    done = subprocess.run([EXE], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "_LOCALTAILR_COMPLETE" in done.stdout, done.stderr
    assert (ROOT_README := Path(__file__).resolve().parents[2] / "README.md").exists()
    assert f"_LOCALTAILR_COMPLETE={shell}_source localtailr" in ROOT_README.read_text()


def test_completion_completes_commands_and_options():
    env = {**os.environ, "_LOCALTAILR_COMPLETE": "bash_complete", "COMP_WORDS": "localtailr k",
           "COMP_CWORD": "1"}
    done = subprocess.run([EXE], env=env, capture_output=True, text=True, timeout=60)
    assert "plain,kv" in done.stdout.splitlines()
    env.update(COMP_WORDS="localtailr kv put --add-r", COMP_CWORD="3")
    done = subprocess.run([EXE], env=env, capture_output=True, text=True, timeout=60)
    assert "plain,--add-read" in done.stdout.splitlines()


def _on_a_terminal(args, env, timeout=120) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal; (exit code, everything written)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], timeout)
        if not ready:
            proc.kill()
            raise TimeoutError(args)
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=timeout), b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_a_large_blob_copy_shows_progress_on_a_terminal_only(localtailr_home, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(130 << 20)
    env = {**os.environ, "LOCALTAILR_HOME": str(localtailr_home.root)}
    code, shown = _on_a_terminal([EXE, "blob", "put", "big.bin", str(big)], env)
    assert code == 0 and "copied 64 MiB" in shown and "(100%)" in shown
    piped = subprocess.run([EXE, "blob", "put", "big2.bin", str(big)], env=env, capture_output=True, text=True)
    assert piped.returncode == 0 and "MiB" not in piped.stderr
    code, shown = _on_a_terminal([EXE, "blob", "put", "big3.bin", str(big), "--json"], env)
    assert code == 0 and "copied" not in shown and json.loads(shown)["size"] == 130 << 20


@pytest.mark.slow
def test_an_environment_build_shows_progress_on_a_terminal_only(localtailr_home, offline, tmp_path):  # noqa: F811
    env = {**os.environ, "LOCALTAILR_HOME": str(localtailr_home.root)}

    def script(requirement: str) -> str:  # one requirement each: every run builds anew
        path = tmp_path / f"with_{requirement.replace('-', '_')}.py"
        path.write_text(f"# requirements: {requirement}\nprint('ran')\n")
        return str(path)

    code, shown = _on_a_terminal([EXE, "run", script("six")], env)
    assert code == 0 and "ran" in shown
    assert "\r\x1b[Kimage " in shown  # the build's steps, rewritten in place
    piped = subprocess.run([EXE, "run", script("idna")], env=env, capture_output=True, text=True)
    assert piped.returncode == 0 and piped.stdout == "ran\n" and piped.stderr == ""
    code, shown = _on_a_terminal([EXE, "run", "--json", script("certifi")], env)
    assert code == 0 and "image " not in shown and shown.strip() == "ran"
    listed = subprocess.run([EXE, "image", "ls", "--json"], env=env, capture_output=True, text=True)
    assert len(json.loads(listed.stdout)) == 3  # all three were built
    # a failed build still shows its log and one clear error, piped or with --json
    for extra in ([], ["--json"]):
        failed = subprocess.run([EXE, "run", *extra, script("no-such-package-here")], env=env,
                                capture_output=True, text=True)
        assert failed.returncode == 1 and failed.stdout == ""
        assert "build log (" in failed.stderr and "no-such-package-here" in failed.stderr
        assert failed.stderr.rstrip().splitlines()[-1].startswith("error: ")


@pytest.mark.slow
def test_every_run_is_a_handle_and_job_wait_shows_progress(localtailr_home, tmp_path):
    script = tmp_path / "jobs_ux.py"
    script.write_text("import time\n\ndef slow():\n    print('working', flush=True)\n    time.sleep(3)\n"
                      "    print('done')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import jobs_ux
    finally:
        sys.path.remove(str(tmp_path))
    try:
        run = BatchJob("Slow", entrypoint=jobs_ux.slow).run()
        assert run["run_id"] == run.run_id and run["job"] == "slow"  # still the run as a dict
        env = {**os.environ, "LOCALTAILR_HOME": str(localtailr_home.root)}
        code, shown = _on_a_terminal([EXE, "job", "wait", str(run.run_id)], env)
        assert code == 0 and f"run {run.run_id}: " in shown and "waited" in shown
        piped = subprocess.run([EXE, "job", "wait", str(run.run_id)], env=env, capture_output=True, text=True)
        assert "waited" not in piped.stdout + piped.stderr
        assert run.state == "succeeded" and run.wait(timeout=60) == "succeeded"
        assert run.logs() == "working\ndone\n"
        again = BatchJob("Slow", entrypoint=jobs_ux.slow).run()
        assert again.state in ("pending", "building", "starting", "running")
        again.stop()
        assert again.wait(timeout=60) in ("killed", "succeeded")
        assert "JobRun(job='slow'" in repr(again)
    finally:
        localtailr_home.stop_daemon()


@pytest.mark.slow
def test_up_port_and_the_port_a_home_remembers(localtailr_home):
    env = {**os.environ, "LOCALTAILR_HOME": str(localtailr_home.root)}
    env.pop("LOCALTAILR_PORT", None)

    def up(*args):
        done = subprocess.run([EXE, "up", "-d", "--json", *args], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def down():
        subprocess.run([EXE, "down"], env=env, capture_output=True, timeout=120, check=True)

    try:
        first = up()["port"]
        down()
        assert up()["port"] == first  # the same address after a restart
        down()
        import socket

        with socket.socket() as s:  # a port free now, to ask for explicitly
            s.bind(("127.0.0.1", 0))
            wanted = s.getsockname()[1]
        info = up("--port", str(wanted))
        assert info["port"] == wanted
        with urllib.request.urlopen(f"http://127.0.0.1:{wanted}/api/health", timeout=30) as resp:
            assert resp.status == 200
        down()
        assert up()["port"] == wanted  # remembered
    finally:
        down()
    bad = subprocess.run([EXE, "up", "--port", "70000"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "70000" in bad.stderr


@pytest.mark.slow
def test_a_workflow_run_has_the_same_verbs(localtailr_home, tmp_path):
    (tmp_path / "wf_ux.py").write_text(
        "from localtailr import task, workflow\n\n@task()\ndef hello():\n    print('hello from a task')\n"
        "    return 1\n\n@task()\ndef twice(x):\n    print('twice', x)\n    return 2 * x\n\n"
        "@workflow(name='UX flow')\ndef flow():\n    twice(hello())\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import wf_ux
    finally:
        sys.path.remove(str(tmp_path))
    try:
        run = wf_ux.flow()
        assert run.wait(timeout=180) == "succeeded" and run.state == "succeeded"
        assert run.logs() == f"== hello (run #{run.tasks()[0]['run_id']}) ==\nhello from a task\n" \
            f"== twice (run #{run.tasks()[1]['run_id']}) ==\ntwice 1\n"
        assert run.logs(tail=0).count("==") == 4
        assert callable(run.stop)
    finally:
        localtailr_home.stop_daemon()
