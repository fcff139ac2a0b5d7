"""platform/status.py: the figures beside the listings, only for what the caller may read."""

from __future__ import annotations

import json

from support import web_seed as seed

from localtailr.platform import blob, jobs, kv, status, users
from localtailr.platform.context import context
from localtailr.sdk.schedule import Schedule


def _world(home):
    root = context(home, "root")
    users.add(root, "bob")
    bob = users.get(root, "bob")["user_id"]
    kv.put(root, "shared", "1", {"read": [bob]})
    kv.put(root, "hidden", "2")
    kv.put(root, "token", "s", kind=kv.SECRETS)
    blob.put(root, "open.txt", b"12345", {"read": [bob]})
    blob.put(root, "closed.txt", b"1")
    hourly = Schedule(at_minutes=[0]).to_dict()
    jobs.save(root, {"name": "mine", "type": "batch", "entrypoint": seed.ENTRY, "schedule": hourly},
              {"read": [bob]})
    jobs.save(root, {"name": "theirs", "type": "batch", "entrypoint": seed.ENTRY, "schedule": hourly})
    runs = [seed.run(root, "mine"), seed.run(root, "theirs")]
    return root, context(home, "bob"), runs


def test_counts_and_schedules_show_only_what_the_caller_reads(localtailr_home):
    root, bob, (mine, theirs) = _world(localtailr_home.home)
    everything = status.counts(root)
    assert (everything["keys"], everything["secrets"], everything["blobs"], everything["jobs"]) == (2, 1, 2, 2)
    seen = status.counts(bob)
    assert (seen["keys"], seen["secrets"], seen["blobs"], seen["blob_bytes"], seen["jobs"], seen["runs"]) \
        == (1, 0, 1, 5, 1, 1)
    assert set(status.schedules(root)) == {("dev", "mine"), ("dev", "theirs")}
    assert set(status.schedules(bob)) == {("dev", "mine")}
    assert set(status.runs_by_id(bob, [mine, theirs])) == {mine}


def test_info_on_the_command_line_counts_what_you_may_read(localtailr_home, cli):
    _world(localtailr_home.home)
    admin = json.loads(cli("info", "--json").stdout)
    bob = json.loads(cli("info", "--json", "--as", "bob").stdout)
    assert (admin["keys"], admin["secrets"], admin["jobs"]) == (2, 1, 2)
    assert (bob["keys"], bob["secrets"], bob["jobs"], bob["user"]) == (1, 0, 1, "bob")
