"""The HTTP seam: the genuine SDK's remote client, logged in with ``datatailr login --url``
to the daemon's Flask app (``/dt``), runs the same handlers as the ``dt`` command."""

from __future__ import annotations

import json
import subprocess

import pytest


@pytest.fixture
def remote(sdk, localtailr_home):
    """The SDK without a ``dt`` on PATH, logged in over HTTP as alice."""
    from localtailr import User

    User.add("alice", "Alice", "A", "alice@example.com", "wonderland")
    info = localtailr_home.start_daemon()
    url = f"http://127.0.0.1:{info['port']}/dt"
    env = sdk.env()
    env["PATH"] = env["PATH"].split(":", 1)[1]  # drop the folder holding dt
    env.update(DATATAILR_BASE_URL=url, DATATAILR_USER_NAME="alice",
               DATATAILR_USER_PASSWORD="wonderland")
    login = subprocess.run([sdk.python, "-m", "datatailr", "login", "--url", url],
                           capture_output=True, text=True, env=env, timeout=60)
    assert login.returncode == 0, login.stderr
    return sdk, env, url


def _run(sdk, env, code: str):
    proc = subprocess.run([sdk.python, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_sdk_over_http_uses_the_same_home(remote, localtailr_home):
    sdk, env, _url = remote
    got = _run(sdk, env, """
import json
from datatailr import KV, Blob, User
from datatailr.utils import is_remote_cli_dt_installed
KV().put("greeting", "hello over http")
Blob().put("remote/file.bin", b"\\x00\\x01payload")
print(json.dumps([is_remote_cli_dt_installed(), User.signed_user().name, KV().get("greeting"),
                  Blob().get("remote/file.bin").decode("latin-1"), Blob().exists("remote/none"),
                  sorted(u.name for u in User.ls())]))
""")
    assert got == [False, "alice", "hello over http", "\x00\x01payload", False,
                   ["alice", "root"]]
    from localtailr import KV, Blob

    localtailr_home.as_user("alice")
    assert KV().get("greeting") == "hello over http"  # written as alice, read as alice
    assert Blob().get("remote/file.bin") == b"\x00\x01payload"


def test_http_refuses_without_login_and_for_denied_access(remote, localtailr_home):
    sdk, env, url = remote
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{url}/api/kv/get?key=x", timeout=10)
    assert err.value.code == 401
    from localtailr import KV

    KV().put("root_only", "secret")  # as root: alice has no READ
    proc = subprocess.run([sdk.python, "-c", "from datatailr import KV; KV().get('root_only')"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode != 0 and "lacks READ" in proc.stderr


def test_bad_password_is_refused(sdk, localtailr_home):
    from localtailr import User

    User.add("bob", "Bob", "B", "bob@example.com", "right")
    info = localtailr_home.start_daemon()
    url = f"http://127.0.0.1:{info['port']}/dt"
    env = sdk.env(DATATAILR_BASE_URL=url, DATATAILR_USER_NAME="bob",
                  DATATAILR_USER_PASSWORD="wrong")
    proc = subprocess.run([sdk.python, "-m", "datatailr", "login", "--url", url],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode != 0 and "invalid" in (proc.stderr + proc.stdout).lower()


@pytest.mark.slow
def test_workflow_deployed_over_http_runs_from_its_uploaded_code(remote, tmp_path):
    sdk, env, _url = remote
    setup = subprocess.run([sdk.python, "-m", "datatailr", "setup-cli", "--no-login"],
                           capture_output=True, text=True, env=env, timeout=60)
    assert setup.returncode == 0, setup.stderr
    project = tmp_path / "proj"
    (project / "pipe").mkdir(parents=True)
    (project / "pipe" / "__init__.py").write_text("")
    (project / "pipe" / "tasks.py").write_text(
        "from datatailr import task\n\n@task()\ndef six():\n    return 6\n\n"
        "@task()\ndef times(a, b):\n    return a * b\n")
    (project / "deploy.py").write_text(
        "from datatailr import workflow\nfrom pipe.tasks import six, times\n\n"
        "@workflow(name='Remote Pipe')\ndef pipe():\n    times(six(), 7)\n\n"
        "if __name__ == '__main__':\n    pipe()\n")
    deploy = subprocess.run([sdk.python, "deploy.py"], capture_output=True, text=True, env=env,
                            cwd=project, timeout=120)
    assert deploy.returncode == 0 and "Error" not in deploy.stderr, deploy.stderr
    (project / "pipe" / "tasks.py").unlink()  # the run uses the uploaded copy
    got = _run(sdk, env, """
import json, time
from datatailr import Workflow
wf = Workflow(name="Remote Pipe", get_existing=True)
for _ in range(600):
    runs = wf.runs(refresh=True)
    if runs and runs[0]["state"] in ("completed", "failed"):
        break
    time.sleep(0.2)
print(json.dumps([runs[0]["state"], wf.result(runs[0]["run_id"], task_name="times")]))
""")
    assert got == ["completed", 42]
