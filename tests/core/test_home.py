"""Issue 9: secrets stay secret and destructive commands are safe — the token never reaches
daemon.log, the home is 0700/0600 (an open one is tightened), ``up -d`` prints a URL that
opens the page, and ``reset`` refuses a folder that is not a home."""

from __future__ import annotations

import http.client
import json
import os
import socket
import sqlite3
import stat
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support import jobs_entry

from localtailr import KV, BatchJob, Blob, Secrets, User
from localtailr.runtime.daemon import control
from localtailr.web import security


def _get(url: str, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def _wait_for_text(path: Path, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace")
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}:\n{path.read_text()[-2000:]}")


def _open_to_others(root: Path) -> list[str]:
    """Every file or folder under ``root`` (root included) with a group or other bit."""
    found = []
    for top, dirs, files in os.walk(root):
        for path in [top] if top == str(root) else []:
            if os.stat(path).st_mode & 0o077:
                found.append(f"{path} {oct(os.stat(path).st_mode)}")
        for name in (*dirs, *files):
            path = os.path.join(top, name)
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                found.append(f"{path} {oct(st.st_mode)}")
    return found


# -- the token stays out of the log ---------------------------------------------------------


def test_the_token_never_reaches_the_daemon_log(localtailr_home):
    home = localtailr_home.home
    info = localtailr_home.start_daemon()
    token = security.token(home)
    assert _get(info["url"], f"/?token={token}").status == 302  # sets the cookie
    assert _get(info["url"], f"/jobs?page=2&token={token}").status == 302
    assert _get(info["url"], "/?token=wrong-guess").status == 401
    # a request line that does not parse is logged as received: the token is hidden there too
    port = urlsplit(info["url"]).port
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(f"GET /api/job/ls?token={token} HTTP/1.1 junk\r\n\r\n".encode())
        sock.recv(4096)
    assert _get(info["url"], "/api/health?last=1").status == 200
    log = _wait_for_text(control.log_path(home), "GET /api/health HTTP")
    assert '"GET /jobs HTTP/1.1" 302' in log and '"GET / HTTP/1.1" 401' in log
    assert token not in log and "wrong-guess" not in log
    assert "token=[hidden]" in log  # the malformed line


# -- the home is private ----------------------------------------------------------------------


@pytest.mark.slow
def test_everything_in_the_home_is_private(localtailr_home):
    """From a process with the usual umask (022): the API, the daemon it starts, a job's run."""
    home = localtailr_home.home
    old = os.umask(0o022)
    try:
        KV().put("k", "v")
        Secrets().put("s", "hidden")
        Blob().put_blob("reports/q1.csv", b"a,b\n1,2\n")
        User.add("alice", password="pw")
        job = BatchJob("Private Probe", jobs_entry.hello, python_version="auto")
        job.run()
        done = job.wait(timeout=120)
        assert done["state"] == "succeeded", job.logs(stderr=True)
    finally:
        os.umask(old)
    assert control.log_path(home).exists()
    assert (home.runs / str(done["run_id"]) / "stdout").exists()
    assert _open_to_others(home.root) == []


@pytest.mark.slow
def test_a_job_writes_outside_the_home_with_the_callers_umask(localtailr_home, tmp_path,
                                                              monkeypatch):
    """The home is 0600/0700, but a job's own files elsewhere follow the umask of whoever
    started localtailr (here 027: files 0640, folders 0750), not the daemon's 077."""
    monkeypatch.delenv("LOCALTAILR_USER_UMASK", raising=False)
    out = tmp_path / "outside"
    out.mkdir()
    old = os.umask(0o027)
    try:
        job = BatchJob("Umask Probe", jobs_entry.write_outside, python_version="auto",
                       env_vars={"PROBE_DIR": str(out)})
        job.run()
        done = job.wait(timeout=120)
        assert done["state"] == "succeeded", job.logs(stderr=True)
    finally:
        os.umask(old)
        localtailr_home.stop_daemon()
    assert stat.S_IMODE((out / "out.txt").stat().st_mode) == 0o640
    assert stat.S_IMODE((out / "made").stat().st_mode) == 0o750
    assert _open_to_others(localtailr_home.home.root) == []


def test_localtailr_run_writes_outside_the_home_with_the_callers_umask(cli, tmp_path,
                                                                       monkeypatch):
    monkeypatch.delenv("LOCALTAILR_USER_UMASK", raising=False)
    out = tmp_path / "outside"
    out.mkdir()
    script = tmp_path / "probe.py"
    script.write_text("import os, sys\nopen(os.path.join(sys.argv[1], 'out.txt'), 'w').close()\n")
    old = os.umask(0o002)
    try:  # --json takes the full command line, which tightens its own umask to 077
        done = cli("run", "--json", str(script), str(out), env={"LOCALTAILR_OFFLINE": "1"})
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((out / "out.txt").stat().st_mode) == 0o664


def test_an_open_home_is_tightened_when_opened(cli, tmp_path):
    sandbox = tmp_path / "sandbox"
    (sandbox / "runs" / "7").mkdir(parents=True)
    (sandbox / "runs" / "7" / "stdout").write_text("old output\n")
    (sandbox / "README.md").write_text("# sandbox\n")
    (sandbox / "daemon.log").write_text("old log\n")
    for path in (sandbox, sandbox / "runs", sandbox / "runs" / "7"):
        os.chmod(path, 0o755)
    for path in (sandbox / "README.md", sandbox / "daemon.log", sandbox / "runs" / "7" / "stdout"):
        os.chmod(path, 0o644)
    done = cli("--home", str(sandbox), "kv", "put", "a", "1")
    assert done.returncode == 0, done.stderr
    assert _open_to_others(sandbox) == []
    assert (sandbox / "runs" / "7" / "stdout").read_text() == "old output\n"  # only modes change


def test_a_loose_log_in_a_private_home_is_tightened(cli, localtailr_home):
    log = control.log_path(localtailr_home.home)
    log.write_text("from an older version\n")
    os.chmod(log, 0o644)
    assert cli("kv", "ls").returncode == 0
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


# -- up -d prints a URL that opens the page --------------------------------------------------


def test_up_detached_prints_the_page_url_with_its_token(localtailr_home, cli):
    up = cli("up", "-d")
    assert up.returncode == 0, up.stderr
    token = security.token(localtailr_home.home)
    [line] = [w for w in up.stdout.split() if w.startswith("http") and "token=" in w]
    assert line.endswith(f"?token={token}")
    parts = urlsplit(line)
    assert _get(line, f"{parts.path}?{parts.query}").status == 302  # accepted: sets the cookie
    again = cli("up", "-d")
    assert "already running" in again.stdout and f"?token={token}" in again.stdout
    log = control.log_path(localtailr_home.home).read_text()
    assert token not in log


def test_status_prints_the_page_url_with_its_token(localtailr_home, cli):
    assert cli("up", "-d").returncode == 0
    token = security.token(localtailr_home.home)
    text = cli("status").stdout
    [line] = [w for w in text.split() if w.startswith("http")]
    assert line.endswith(f"/?token={token}")
    parts = urlsplit(line)
    assert _get(line, f"{parts.path}?{parts.query}").status == 302  # accepted: sets the cookie
    data = json.loads(cli("status", "--json").stdout)
    assert data["page"] == line and "token" not in data["url"]
    assert token not in control.log_path(localtailr_home.home).read_text()


# -- reset refuses what is not a home ----------------------------------------------------------


def test_reset_refuses_a_folder_that_is_not_a_home(cli, tmp_path):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('precious')\n")
    (project / "notes.txt").write_text("keep me\n")
    done = cli("--home", str(project), "reset", "--yes")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("error: ") and "not a localtailr home" in done.stderr
    assert (project / "src" / "main.py").read_text() == "print('precious')\n"
    assert sorted(p.name for p in project.iterdir()) == ["notes.txt", "src"]
    # a state.db of another program is not a home either, and is not migrated
    other = sqlite3.connect(project / "state.db")
    other.execute("CREATE TABLE things (x)")
    other.commit()
    other.close()
    done = cli("--home", str(project), "reset", "--yes")
    assert done.returncode == 1 and "not a localtailr home" in done.stderr
    tables = sqlite3.connect(project / "state.db").execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("things",)]
    # a folder that does not exist
    done = cli("--home", str(tmp_path / "nowhere"), "reset", "--yes")
    assert done.returncode == 1 and "not a localtailr home" in done.stderr
    assert not (tmp_path / "nowhere").exists()


def test_reset_still_needs_an_admin(cli, localtailr_home):
    User.add("bob")
    KV().put("k", "v")
    done = cli("--as", "bob", "reset", "--yes")
    assert done.returncode == 1 and "admin" in done.stderr.lower()
    assert KV().get("k") == "v"
    assert cli("reset", "--yes").returncode == 0
    assert not localtailr_home.home.db_path.exists()


def test_an_entry_that_vanishes_while_the_home_is_tightened_is_skipped(tmp_path):
    """Opening a home tightens what is in it; another process's temporary file (a key
    rotation's ``.secret.key.PID.tmp``) may be replaced between the listing and its stat."""
    import multiprocessing

    from localtailr.core import home as home_mod
    from localtailr.core import home_folder

    root = tmp_path / "open-home"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)  # open to others: the whole tree is walked
    for i in range(200):
        (root / f"f{i}").write_text("x")
    stop = multiprocessing.Event()
    churn = multiprocessing.Process(target=_churn, args=(str(root), stop))
    churn.start()
    try:
        for _ in range(200):
            home_folder._tightened.discard(str(root))
            os.chmod(root, 0o755)
            home_mod.Home(root).tighten()  # never FileNotFoundError
    finally:
        stop.set()
        churn.join(10)
    assert os.stat(root).st_mode & 0o077 == 0
    home_folder._tighten_entry(str(root / "never-there"))  # a vanished entry is skipped


def _churn(root: str, stop) -> None:
    i = 0
    while not stop.is_set():
        path = os.path.join(root, f".tmp.{i % 50}")
        with open(path, "w") as f:
            f.write("x")
        os.unlink(path)
        i += 1
