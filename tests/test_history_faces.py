"""Data with history on the other faces: the command line, the HTTP API and the pages."""

import io
import json
import zipfile

import pytest
from support import web_seed as seed

from localtailr import ACL, KV, Blob, Secrets, User
from localtailr.platform.context import context
from localtailr.web import security
from localtailr.web.app import create_app


@pytest.fixture
def client(localtailr_home):
    c = create_app(localtailr_home.home).test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {security.token(localtailr_home.home)}"
    return c


def written_by_a_task(localtailr_home, monkeypatch):
    """A workflow run whose task 'load' read in.csv and wrote out.csv (as inside its process)."""
    ctx = context()
    seed.job(ctx, "flow", type="workflow", workflow={"nodes": [{"name": "load"}], "edges": []})
    parent = seed.run(ctx, "flow")
    task = seed.child(ctx, parent, "load", "succeeded")
    Blob().put("in.csv", "a")
    monkeypatch.setenv("LOCALTAILR_RUN_ID", str(task))
    Blob().get("in.csv")
    Blob().put("out.csv", "b")
    monkeypatch.delenv("LOCALTAILR_RUN_ID")
    return parent, task


# -- command line ----------------------------------------------------------------------


def test_cli_blob_history_get_version_diff_restore(cli, localtailr_home):
    Blob().put("r.txt", "one\n")
    Blob().put("r.txt", "two\n")
    rows = json.loads(cli("blob", "history", "r.txt", "--json", check=True).stdout)
    assert [r["version"] for r in rows] == [1, 2]
    assert "version" in cli("blob", "history", "r.txt", check=True).stdout.splitlines()[0].lower()
    assert cli("blob", "get", "r.txt", "--version", "1", check=True).stdout == "one\n"
    assert "-one\n+two" in cli("blob", "diff", "r.txt", "1", "2", check=True).stdout
    assert "as version 3" in cli("blob", "restore", "r.txt", "1", check=True).stdout
    assert Blob().get("r.txt") == b"one\n"
    bad = cli("blob", "get", "r.txt", "--version", "9")
    assert bad.returncode == 1 and "has no version 9" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_restore_without_write_is_refused(cli, localtailr_home):
    User.add("alice", "A", "B", "a@example.com", "pw")
    Blob().put("s", "1", ACL(read=["alice"], write=["root"]))
    Blob().put("s", "2")
    done = cli("blob", "restore", "s", "1", "--as", "alice")
    assert done.returncode == 1 and "lacks WRITE" in done.stderr
    assert len(Blob().history("s")) == 2


def test_cli_kv_history_and_secret_history(cli, localtailr_home):
    KV().put("k", "v1")
    KV().put("k", "v2")
    Secrets().put("pw", "hidden-value")
    assert "v1" in cli("kv", "history", "k", check=True).stdout
    assert cli("kv", "get", "k", "--version", "1", check=True).stdout.strip() == "v1"
    cli("kv", "restore", "k", "1", check=True)
    assert KV().get("k") == "v1"
    out = cli("kv", "history", "pw", "--secure", "--json", check=True).stdout
    assert "hidden-value" not in out and json.loads(out)[0]["version"] == 1


def test_cli_commit_ls_show_lineage_fsck_dump_gc(cli, localtailr_home, monkeypatch, tmp_path):
    with Blob().commit("nightly load") as c:
        c.put("x", b"1")
        c.kv.put("loaded", "yes")
    ls = json.loads(cli("commit", "ls", "--json", check=True).stdout)
    assert [(r["commit_id"], r["message"], r["changes"]) for r in ls] == [(c.id, "nightly load", 2)]
    shown = cli("commit", "show", str(c.id), check=True).stdout
    assert "nightly load" in shown and "blob/x" in shown and "kv/dev/loaded" in shown
    assert cli("commit", "show", "99").returncode == 1

    parent, task = written_by_a_task(localtailr_home, monkeypatch)
    text = cli("lineage", "out.csv", check=True).stdout
    assert f"written by run #{task} (flow task load, succeeded)" in text and "read  blob/in.csv@1" in text

    assert cli("fsck", check=True).stdout.startswith("0 problem(s)")
    (localtailr_home.home.blobs / "objects" / "ff").mkdir(parents=True, exist_ok=True)
    (localtailr_home.home.blobs / "objects" / "ff" / ("0" * 62)).write_bytes(b"orphan")
    found = cli("fsck")
    assert found.returncode == 1 and "not used by any kept version" in found.stdout
    fixed = cli("fsck", "--fix")
    assert fixed.returncode == 0 and "[fixed]" in fixed.stdout

    dump = cli("debug", "dump", str(tmp_path / "d.zip"), check=True)
    assert "wrote" in dump.stdout and zipfile.is_zipfile(tmp_path / "d.zip")

    Blob().put("x", b"2")
    cli("blob", "retention", "set", "x", "--versions", "1", check=True)
    report = json.loads(cli("blob", "gc", "--json", check=True).stdout)
    assert report["versions_dropped"] == 1 and report["objects_removed"] == 1
    bad = cli("blob", "retention", "set", "y", "--versions", "0")
    assert bad.returncode == 1 and "keep_versions" in bad.stderr


# -- HTTP ------------------------------------------------------------------------------


def test_api_history_versions_restore_diff(client, localtailr_home):
    Blob().put("r.txt", "one\n")
    Blob().put("r.txt", "two\n")
    rows = client.get("/api/blob/history?name=r.txt").get_json()
    assert [r["version"] for r in rows] == [1, 2]
    assert client.get("/api/blob/get?name=r.txt&version=1").data == b"one\n"
    assert client.get("/api/blob/get?name=r.txt&version=7").status_code == 404
    assert client.get("/api/blob/get?name=r.txt&version=x").status_code == 400
    assert "+two" in client.get("/api/blob/diff?name=r.txt&a=1&b=2").get_json()["diff"]
    assert client.post("/api/blob/restore", json={"name": "r.txt", "version": 1}).get_json()["version"] == 3
    assert client.post("/api/blob/restore", json={"name": "r.txt", "version": 42}).status_code == 404
    KV().put("k", "a")
    KV().put("k", "b")
    assert client.get("/api/kv/get?key=k&version=1").get_json() == "a"
    assert [r["value"] for r in client.get("/api/kv/history?key=k").get_json()] == ["a", "b"]
    Secrets().put("pw", "never-shown")
    resp = client.get("/api/secret/history?key=pw")
    assert resp.get_json()[0]["version"] == 1 and b"never-shown" not in resp.data


def test_api_restore_without_write_is_403(client, localtailr_home):
    User.add("alice", "A", "B", "a@example.com", "pw")
    Blob().put("s", "1", ACL(read=["alice"], write=["root"]))
    resp = client.post("/api/blob/restore", json={"name": "s", "version": 1}, headers={"X-Localtailr-User": "alice"})
    assert resp.status_code == 403 and "WRITE" in resp.get_json()["error"]


def test_api_commits_lineage_run_io_fsck_dump(client, localtailr_home, monkeypatch):
    with Blob().commit("via api") as c:
        c.put("y", b"1")
    assert client.get("/api/commit/ls").get_json()[0]["message"] == "via api"
    assert client.get(f"/api/commit/show?commit_id={c.id}").get_json()["changes"][0]["resource"] == "blob/y"
    parent, task = written_by_a_task(localtailr_home, monkeypatch)
    assert client.get("/api/blob/lineage?name=out.csv").get_json()["written_by"]["run_id"] == task
    io_ = client.get(f"/api/run/io?run_id={task}").get_json()
    assert io_["read"] == [{"resource": "blob/in.csv", "version": 1}]
    assert client.get("/api/fsck/check").get_json()["problems"] == []
    resp = client.get("/api/debug/dump")
    assert resp.status_code == 200 and zipfile.ZipFile(io.BytesIO(resp.data)).testzip() is None
    assert security.token(localtailr_home.home).encode() not in resp.data


# -- pages -----------------------------------------------------------------------------


def test_pages_show_who_wrote_what(client, localtailr_home, monkeypatch):
    parent, task = written_by_a_task(localtailr_home, monkeypatch)
    blobs = client.get("/blobs").get_data(as_text=True)
    assert f'written by run <a href="/runs/{task}">#{task}</a> (task load)' in blobs
    run = client.get(f"/runs/{parent}").get_data(as_text=True)
    assert 'in.csv</a>@1' in run and 'out.csv</a>@1' in run
    page = client.get("/blobs/history?name=out.csv").get_data(as_text=True)
    assert f"written by run <a href=\"/runs/{task}\">#{task}</a> (task load)" in page
    assert "/api/blob/get?name=out.csv&version=1" in page
    assert client.get("/blobs/history?name=nothing").status_code == 404


def test_the_history_page_restores_through_its_form(client, localtailr_home):
    Blob().put("p.txt", "first")
    Blob().put("p.txt", "second")
    page = client.get("/blobs/history?name=p.txt").get_data(as_text=True)
    assert 'action="/api/blob/restore"' in page and 'name="version" value="1"' in page
    resp = client.post("/api/blob/restore", data={"name": "p.txt", "version": "1", "next": "/blobs/history?name=p.txt"},
                       headers={"Origin": "http://localhost"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/blobs/history?name=p.txt")
    assert Blob().get("p.txt") == b"first" and len(Blob().history("p.txt")) == 3
    User.add("alice", "A", "B", "a@example.com", "pw")
    Blob().put("q.txt", "1", ACL(read=["alice", "root"], write=["root"]))
    Blob().put("q.txt", "2")
    assert 'action="/api/blob/restore"' in client.get("/blobs/history?name=q.txt").get_data(as_text=True)
    as_alice = client.get("/blobs/history?name=q.txt", headers={"X-Localtailr-User": "alice"})
    assert as_alice.status_code == 200 and "/api/blob/restore" not in as_alice.get_data(as_text=True)


def test_a_keys_history_page_shows_its_versions_and_restores_for_a_writer(client, localtailr_home):
    User.add("alice", "A", "B", "a@example.com", "pw")
    for value in ("first", "second", "third"):
        KV().put("conf/k", value, ACL(read=["alice", "root"], write=["root"]))
    assert 'href="/kv/history?env=dev&key=conf/k"' in client.get("/kv?env=dev").get_data(as_text=True)
    page = client.get("/kv/history?env=dev&key=conf/k").get_data(as_text=True)
    assert all(f"<code>{v}</code>" in page for v in ("first", "second", "third")) and "root" in page
    assert page.count('action="/api/kv/restore"') == 2  # every past version, not the current
    assert 'name="version" value="1"' in page and 'name="version" value="3"' not in page
    as_alice = client.get("/kv/history?env=dev&key=conf/k", headers={"X-Localtailr-User": "alice"})
    assert as_alice.status_code == 200 and "<code>first</code>" in as_alice.get_data(as_text=True)
    assert "/api/kv/restore" not in as_alice.get_data(as_text=True)  # alice may read, not write
    resp = client.post("/api/kv/restore", data={"key": "conf/k", "version": "1", "env": "dev",
                                                "next": "/kv/history?env=dev&key=conf/k"},
                       headers={"Origin": "http://localhost"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/kv/history?env=dev&key=conf/k")
    assert KV().get("conf/k") == "first" and [v["version"] for v in KV().history("conf/k")] == [1, 2, 3, 4]
    assert client.get("/kv/history?env=dev&key=nothing").status_code == 404
    assert client.get("/kv/history?env=dev&key=").status_code == 400
    KV().put("private", "x", ACL(read=["root"], write=["root"]))
    assert client.get("/kv/history?env=dev&key=private", headers={"X-Localtailr-User": "alice"}).status_code == 403


def test_a_secrets_history_page_shows_who_and_when_never_a_value(client, localtailr_home):
    Secrets().put("db/pw", "never-shown-1")
    Secrets().put("db/pw", "never-shown-2")
    assert 'href="/secrets/history?env=dev&key=db/pw"' in client.get("/secrets?env=dev").get_data(as_text=True)
    resp = client.get("/secrets/history?env=dev&key=db/pw")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and b"never-shown" not in resp.data
    assert page.count("<td>set</td>") == 2 and "root" in page and "/api/kv/restore" not in page


def test_the_commit_pages(client, localtailr_home, monkeypatch):
    User.add("bob", "B", "C", "b@example.com", "pw")
    with Blob().commit("load <b>monday</b>") as c:
        c.put("m.csv", b"1")
        c.kv.put("loaded", "monday")
    listing = client.get("/commits").get_data(as_text=True)
    assert f'href="/commits/{c.id}"' in listing and "load &lt;b&gt;monday&lt;/b&gt;" in listing
    page = client.get(f"/commits/{c.id}").get_data(as_text=True)
    assert "m.csv</a>@1" in page and "kv/dev/loaded@1" in page
    assert f'href="/commits/{c.id}"' in client.get("/blobs/history?name=m.csv").get_data(as_text=True)
    assert client.get("/commits/999").status_code == 404
    bob = client.get(f"/commits/{c.id}", headers={"X-Localtailr-User": "bob"})
    assert bob.status_code == 404  # nothing in it bob may read: not shown
