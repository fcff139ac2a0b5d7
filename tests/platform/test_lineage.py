"""Lineage recorded inside runs, walked back and forward; fsck; the debug dump."""

import os
import subprocess
import sys
import zipfile

import pytest
from support import web_seed as seed

import localtailr
from localtailr import ACL, KV, Blob, Secrets, User
from localtailr.platform import debug_dump, fsck, lineage
from localtailr.platform.context import context


@pytest.fixture
def runs(localtailr_home):
    """Three runs of a saved job (as the daemon records them), to act inside."""
    ctx = context()
    seed.job(ctx, "step")
    return [seed.run(ctx, "step") for _ in range(3)]


def inside(monkeypatch, run_id):
    monkeypatch.setenv("LOCALTAILR_RUN_ID", str(run_id))


def test_reads_and_writes_inside_runs_are_walked_back_and_forward(localtailr_home, runs, monkeypatch):
    a, b, c = runs
    Blob().put("in.csv", "1,2")
    KV().put("threshold", "5")
    inside(monkeypatch, a)
    Blob().get("in.csv")
    KV().get("threshold")
    Blob().put("mid.csv", "3")
    inside(monkeypatch, b)
    Blob().get_file("mid.csv", localtailr_home.root / "copy")
    Blob().put("out.csv", "4")
    inside(monkeypatch, c)
    Blob().get("out.csv")
    monkeypatch.delenv("LOCALTAILR_RUN_ID")
    Blob().get("out.csv")  # outside a run: nothing recorded

    seen = Blob().lineage("mid.csv")
    assert seen["written_by"]["run_id"] == a and seen["written_by"]["run"]["job"] == "step"
    assert [n["run_id"] for n in seen["back"]] == [a]
    assert seen["back"][0]["read"] == [{"resource": "blob/in.csv", "version": 1},
                                       {"resource": "kv/dev/threshold", "version": 1}]
    assert [n["run_id"] for n in seen["forward"]] == [b, c]
    out = Blob().lineage("out.csv")
    assert [n["run_id"] for n in out["back"]] == [b, a]
    assert lineage.run_io(context(), b) == {
        "run_id": b, "read": [{"resource": "blob/mid.csv", "version": 1}],
        "wrote": [{"resource": "blob/out.csv", "version": 1}]}
    assert Blob().history("mid.csv")[0]["run_id"] == a
    assert KV().history("threshold")[0]["run_id"] is None
    assert Blob().lineage("in.csv")["written_by"] is None


def test_secret_reads_are_recorded_without_their_value(localtailr_home, runs, monkeypatch):
    Secrets().put("token", "hunter2-value")
    inside(monkeypatch, runs[0])
    assert Secrets().get("token") == "hunter2-value"
    assert lineage.run_io(context(), runs[0])["read"] == [{"resource": "secret/dev/token", "version": 1}]


def test_lineage_shows_only_what_the_caller_may_read(localtailr_home, runs, monkeypatch):
    User.add("alice", "A", "B", "a@example.com", "pw")
    Blob().put("private.csv", "p")
    Blob().put("public.csv", "q", ACL(read=["alice"], write=["root"]))
    inside(monkeypatch, runs[0])
    Blob().get("private.csv")
    Blob().put("result.csv", "r", ACL(read=["alice"], write=["root"]))
    monkeypatch.delenv("LOCALTAILR_RUN_ID")
    monkeypatch.setenv("LOCALTAILR_USER", "alice")
    seen = Blob().lineage("result.csv")
    assert seen["back"][0]["read"] == [] and seen["back"][0]["run"] is None  # job and input hidden
    with pytest.raises(localtailr.PermissionError):
        Blob().lineage("private.csv")
    with pytest.raises(localtailr.PermissionError):
        lineage.run_io(context(), runs[0])


def test_lineage_of_versions_that_do_not_exist(localtailr_home):
    Blob().put("a", b"1")
    with pytest.raises(KeyError, match="no version 4"):
        Blob().lineage("a", 4)
    with pytest.raises(ValueError, match="invalid version"):
        Blob().lineage("a", 0)
    with pytest.raises(KeyError):
        Blob().lineage("never")
    with pytest.raises(KeyError, match="run 999"):
        lineage.run_io(context(), 999)


def test_a_long_chain_is_walked_to_its_start(localtailr_home, monkeypatch):
    ctx = context()
    seed.job(ctx, "link")
    Blob().put("chain/0", "0")
    for i in range(1, 60):
        inside(monkeypatch, seed.run(ctx, "link"))
        Blob().get(f"chain/{i - 1}")
        Blob().put(f"chain/{i}", str(i))
    monkeypatch.delenv("LOCALTAILR_RUN_ID")
    assert len(Blob().lineage("chain/59")["back"]) == 59
    assert len(Blob().lineage("chain/0")["forward"]) == 59


# -- fsck ------------------------------------------------------------------------------


def objects(home):
    return sorted(p for p in (home.blobs / "objects").rglob("*") if p.is_file())


def test_fsck_finds_and_fixes_what_it_can(localtailr_home, runs):
    home = localtailr_home.home
    assert fsck.check(context())["problems"] == []
    Blob().put("good", b"good bytes")
    Blob().put("bad", b"bad bytes!")
    bad = next(p for p in objects(home) if p.read_bytes() == b"bad bytes!")
    bad.write_bytes(b"rotten!!!!")
    orphan = home.blobs / "objects" / "ab" / ("c" * 62)
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"nobody's")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    part = home.blobs / "tmp" / f"{dead}-x.part"
    part.write_bytes(b"half")
    os.utime(part, (1, 1))
    report = fsck.check(context())
    lines = [f"{p['kind']}: {p['what']}" for p in report["problems"]]
    assert any("does not have its sha256 (corrupt); used by bad@1" in line for line in lines)
    assert any(str(orphan) in line and "not used" in line for line in lines)
    assert any(str(part) in line for line in lines)
    fixed = fsck.check(context(), fix=True)
    assert {p["kind"] for p in fixed["problems"] if p["fixed"]} == {"object", "partial"}
    assert [p["what"] for p in fixed["problems"] if not p["fixed"]] == [
        p["what"] for p in report["problems"] if "corrupt" in p["what"]]
    assert not orphan.exists() and not part.exists() and Blob().get("good") == b"good bytes"
    assert len(fsck.check(context())["problems"]) == 1
    good = next(p for p in objects(home) if p.read_bytes() == b"good bytes")
    good.unlink()
    missing = [p["what"] for p in fsck.check(context(), fix=True)["problems"] if "missing" in p["what"]]
    assert missing == [f"object {good} is missing; used by good@1 (cannot be fixed here:"
                       " restore another version or put the blob again)"]


def test_fsck_names_undecryptable_secrets_and_is_for_admins(localtailr_home, monkeypatch):
    Secrets().put("s", "value")
    context().conn.execute("UPDATE secrets SET token = ? WHERE key = 's'", (b"not a token",))
    assert [p["what"] for p in fsck.check(context())["problems"]] == [
        "secret 's' in dev does not decrypt with the current key"]
    User.add("bob", "B", "C", "b@example.com", "pw")
    monkeypatch.setenv("LOCALTAILR_USER", "bob")
    with pytest.raises(localtailr.PermissionError):
        fsck.check(context())


# -- debug dump ------------------------------------------------------------------------


def test_the_debug_dump_never_holds_a_secret_or_the_token(localtailr_home, runs, tmp_path):
    home = localtailr_home.home
    Secrets().put("db_password", "correct-horse-battery")
    from localtailr.web import security

    token = security.token(home)
    folder = home.run_dir(runs[0])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stdout").write_text(f"connecting with correct-horse-battery and {token}\nok\n")
    (home.root / "daemon.log").write_text(f"started, url ?token={token}\n")
    info = debug_dump.dump(context(), tmp_path / "dump.zip", runs=2)
    with zipfile.ZipFile(info["path"]) as z:
        names = set(z.namelist())
        texts = {n: z.read(n).decode() for n in names}
    assert {"versions.json", "settings.json", "status.json", "daemon.log", "schema.sql",
            "counts.json", f"runs/{runs[2]}/run.json", f"runs/{runs[1]}/stdout"} <= names
    assert f"runs/{runs[0]}/run.json" not in names  # only the last 2 runs
    everything = "\n".join(texts.values())
    assert "correct-horse-battery" not in everything and token not in everything
    assert home.key_file.read_text().strip() not in everything
    assert "CREATE TABLE blob_versions" in texts["schema.sql"]
    assert '"secrets": 1' in texts["counts.json"]


def test_the_debug_dump_refuses_bad_paths_and_non_admins(localtailr_home, tmp_path, monkeypatch):
    with pytest.raises(ValueError):
        debug_dump.dump(context(), tmp_path)
    with pytest.raises(ValueError):
        debug_dump.dump(context(), tmp_path / "missing" / "d.zip")
    User.add("bob", "B", "C", "b@example.com", "pw")
    monkeypatch.setenv("LOCALTAILR_USER", "bob")
    with pytest.raises(localtailr.PermissionError):
        debug_dump.dump(context(), tmp_path / "d.zip")
    assert not (tmp_path / "d.zip").exists()
