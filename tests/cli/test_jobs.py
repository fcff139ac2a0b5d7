"""Issue 4, the command line: ``localtailr job ...`` and ``localtailr logs``, human output,
``--json``, and errors as one line on stderr with exit code 1."""

import json

from support import jobs_entry

from localtailr import BatchJob, Service
from localtailr.platform import jobs
from localtailr.platform.context import context


def setup_jobs(home):
    ctx = context()
    run = jobs.run(ctx, BatchJob("Daily Report", jobs_entry.hello).to_dict(), params={"rundate": "2024-01-01"})
    jobs.save(ctx, Service("Api", jobs_entry.serve).to_dict())
    run_dir = home.run_dir(run["run_id"])
    run_dir.mkdir(parents=True)
    (run_dir / "stdout").write_text("l1\nl2\nl3\n")
    (run_dir / "stderr").write_text("warn\n")
    return run["run_id"]


def test_ls_get_runs_versions(cli, localtailr_home):
    run_id = setup_jobs(localtailr_home.home)
    out = cli("job", "ls")
    assert out.returncode == 0
    assert out.stdout.splitlines()[0].split() == ["NAME", "ENVIRONMENT", "TYPE", "VERSION", "STATUS", "NEXT_FIRE", "RUN_AS", "URL"]
    assert "daily-report" in out.stdout and "never run" in out.stdout
    data = json.loads(cli("job", "ls", "--json").stdout)
    assert {j["name"]: j["status"] for j in data} == {"api": "never run", "daily-report": "pending"}
    got = json.loads(cli("job", "get", "Daily Report", "--json").stdout)
    assert got["definition"]["entrypoint"]["qualname"] == "hello"
    assert "support.jobs_entry:hello" in cli("job", "get", "daily-report").stdout
    runs = json.loads(cli("job", "runs", "--json").stdout)
    assert [(r["run_id"], r["params"]) for r in runs] == [(run_id, {"rundate": "2024-01-01"})]
    assert "pending" in cli("job", "run-info", str(run_id)).stdout
    assert json.loads(cli("job", "versions", "api", "--json").stdout)[0]["current"] is True


def test_set_version_promote_stop_rm(cli, localtailr_home):
    setup_jobs(localtailr_home.home)
    jobs.save(context(), Service("Api", jobs_entry.serve).to_dict())
    assert "version 1 is current" in cli("job", "set-version", "api", "1").stdout
    assert cli("job", "promote", "api").stdout.strip() == "promoted api to pre as version 1"
    assert json.loads(cli("job", "ls", "--env", "pre", "--json").stdout)[0]["name"] == "api"
    assert "stopped" in cli("job", "stop", "daily-report").stdout
    assert cli("job", "stop", "api").stdout.strip() == "nothing was running"
    assert cli("job", "rm", "daily-report").returncode == 0
    assert [j["name"] for j in json.loads(cli("job", "ls", "--json").stdout)] == ["api"]


def test_wait_exit_codes(cli, localtailr_home):
    run_id = setup_jobs(localtailr_home.home)
    slow = cli("job", "wait", str(run_id), "--timeout", "0.1")
    assert slow.returncode == 1 and slow.stderr.strip() == f"error: run {run_id} is still pending after 0.1 s"
    context().conn.execute("UPDATE runs SET state = 'failed', reason = 'exit code 2' WHERE run_id = ?", (run_id,))
    failed = cli("job", "wait", str(run_id))
    assert failed.returncode == 2 and "failed - exit code 2" in failed.stdout


def test_logs(cli, localtailr_home):
    run_id = setup_jobs(localtailr_home.home)
    assert cli("logs", "Daily Report").stdout == "l1\nl2\nl3\n"
    assert cli("logs", "daily-report", "--tail", "1").stdout == "l3\n"
    assert cli("logs", "--run", str(run_id), "--stderr").stdout == "warn\n"
    assert json.loads(cli("logs", "daily-report", "--json").stdout) == {"run_id": run_id, "text": "l1\nl2\nl3\n"}
    context().conn.execute("UPDATE runs SET state = 'succeeded' WHERE run_id = ?", (run_id,))
    assert cli("logs", "daily-report", "-f", "--tail", "2").stdout == "l2\nl3\n"


def test_errors_are_one_line(cli, localtailr_home):
    setup_jobs(localtailr_home.home)
    for args, message in [
        (("job", "get", "nope"), "error: job 'nope' not found in environment dev"),
        (("job", "set-version", "api", "9"), "error: job 'api' has no version 9; it has 1"),
        (("job", "promote", "api", "--env", "prod"), "error: job 'api' not found in environment prod"),
        (("logs", "api"), "error: job 'api' has no runs yet"),
        (("job", "runs", "--state", "done"), "error: invalid state 'done'"),
    ]:
        out = cli(*args)
        assert out.returncode == 1, args
        assert out.stderr.startswith(message) and len(out.stderr.strip().splitlines()) == 1, out.stderr
    cli("user", "add", "bob")
    denied = cli("job", "stop", "api", "--as", "bob")
    assert denied.returncode == 1
    assert denied.stderr.strip() == "error: user 'bob' lacks OPERATE permission on job/dev/api (stop)"


def test_rm_version(cli, localtailr_home):
    setup_jobs(localtailr_home.home)
    for x in "ab":
        jobs.save(context(), Service("Api", jobs_entry.serve, env_vars={"X": x}).to_dict())
    assert cli("job", "rm", "api", "--version", "3").stdout.strip() == (
        "removed version 3 of api; version 2 is current")
    missing = cli("job", "rm", "api", "--version", "3")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: job 'api' has no version 3; it has 1, 2"
    assert json.loads(cli("job", "rm", "api", "--version", "1", "--json").stdout)[
        "current_version"] == 2
    assert cli("job", "rm", "api", "--version", "2").stdout.strip() == (
        "removed version 2 of api; it was the last: job removed")
    assert [j["name"] for j in json.loads(cli("job", "ls", "--json").stdout)] == ["daily-report"]
