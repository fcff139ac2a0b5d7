"""Data with history (issue 14): what versioning costs a put, what an unchanged put costs,
and how fast ``history`` and ``lineage`` answer on long histories."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench import row

PUT_MIB = 100
ROUNDS = 9  # each side; a 100 MiB put is ~0.1-0.5 s here
VERSIONS = 10_000
CHAIN = 1_000
QUERIES = 60


def _make_file(path: Path, mib: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(mib):
            f.write(block[i % 97:] + block[: i % 97])


def _new_content(path: Path, counter: list[int]) -> None:
    """Change the file's first bytes, so that each put stores new content."""
    counter[0] += 1
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, counter[0].to_bytes(8, "little"), 0)
    finally:
        os.close(fd)


def _unversioned_put(ctx, name: str, path: Path) -> None:
    """The put of before history: the same copy, hash, fsyncs and rename, then one UPSERT
    of the name (no version row, no dedup check)."""
    from localtailr import store
    from localtailr.platform import blob

    tmp = blob.part_path(ctx)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb", buffering=0) as f:
        sha, size = blob._copy_and_hash(path, f.fileno())
        os.fsync(f.fileno())
    target = blob.object_path(ctx, sha)
    target.parent.mkdir(exist_ok=True)
    os.replace(tmp, target)
    blob._fsync_dir(target.parent)
    with store.transaction(ctx.conn) as conn:
        conn.execute(
            "INSERT INTO blobs (name, size, sha256, updated_at, updated_by) VALUES (?, ?, ?, ?, 0)"
            " ON CONFLICT (name) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256,"
            " updated_at = excluded.updated_at", (name, size, sha, time.time()))


def bench_put(folder: Path) -> list[dict]:
    from localtailr.platform import blob
    from localtailr.platform.context import context
    from localtailr.pytest_plugin import make_home

    home = make_home(folder / "put-home")
    ctx = context(home, "root", "dev")
    src = folder / "src.bin"
    _make_file(src, PUT_MIB)
    counter = [0]

    def timed(fn) -> float:
        _new_content(src, counter)
        os.sync()
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    versioned_s, plain_s = [], []
    for i in range(2 * ROUNDS):  # alternating: v u u v v u ...
        if (i + i // 2) % 2 == 0:
            versioned_s.append(timed(lambda: blob.put_file(ctx, "v.bin", src)))
        else:
            plain_s.append(timed(lambda: _unversioned_put(ctx, "u.bin", src)))
    # best of the rounds on each side: on a shared disk and CPU, noise only ever adds time
    versioned, plain = min(versioned_s), min(plain_s)
    objects_before = sum(1 for p in (home.blobs / "objects").rglob("*") if p.is_file())
    firsts, agains = [], []
    for _ in range(ROUNDS):
        _new_content(src, counter)
        os.sync()
        time.sleep(0.1)  # a file changed within a clock tick of its put is always read again
        t = time.perf_counter()
        blob.put_file(ctx, "same.bin", src)
        firsts.append(time.perf_counter() - t)
        t = time.perf_counter()
        blob.put_file(ctx, "same.bin", src)  # unchanged content
        agains.append(time.perf_counter() - t)
    new_objects = sum(1 for p in (home.blobs / "objects").rglob("*") if p.is_file()) - objects_before
    shutil.rmtree(home.root, ignore_errors=True)
    first, again = statistics.median(firsts), statistics.median(agains)
    return [
        row(f"versioned put_file {PUT_MIB} MiB", versioned * 1000, "ms", plain * 1000,
            "unversioned put (same copy, hash, fsyncs)", target="<= 1.1x", ok=versioned / plain <= 1.1,
            note=f"best of {ROUNDS} alternating rounds, new content each time"),
        row(f"put_file {PUT_MIB} MiB, unchanged content", again * 1000, "ms", first * 1000,
            "the first put of that content", target="<= 0.2x", ok=again / first <= 0.2 and new_objects == ROUNDS,
            note=f"{new_objects} objects for {ROUNDS} new contents put twice each: the second put stores"
            " none and, the file being unchanged (device, inode, size, mtime, ctime), does not read it"),
    ]


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


def bench_queries(folder: Path) -> list[dict]:
    from localtailr import store
    from localtailr.platform import blob, blob_history, jobs, lineage
    from localtailr.platform.context import context
    from localtailr.pytest_plugin import make_home

    home = make_home(folder / "query-home")
    ctx = context(home, "root", "dev")
    with store.transaction(ctx.conn):
        for i in range(VERSIONS):
            blob.put(ctx, "many", "ab"[i % 2])  # two contents: every put after the second stores none
    assert len(blob_history.history(ctx, "many")) == VERSIONS
    history = []
    for _ in range(QUERIES):
        t = time.perf_counter()
        blob_history.history(ctx, "many")
        history.append(time.perf_counter() - t)

    entry = {"module": "bench", "qualname": "main", "sys_path": None, "file": None, "kind": "module"}
    jobs.save(ctx, {"name": "link", "type": "batch", "entrypoint": entry})
    blob.put(ctx, "chain/0", "0")
    with store.transaction(ctx.conn):
        for i in range(1, CHAIN + 1):
            os.environ["LOCALTAILR_RUN_ID"] = str(jobs.start(ctx, "link")["run_id"])
            blob.get(ctx, f"chain/{i - 1}")
            blob.put(ctx, f"chain/{i}", str(i))
    del os.environ["LOCALTAILR_RUN_ID"]
    assert len(lineage.blob(ctx, f"chain/{CHAIN}")["back"]) == CHAIN
    walks = []
    for i in range(QUERIES):
        name = f"chain/{CHAIN}" if i % 2 else "chain/0"  # back over the chain, or forward
        t = time.perf_counter()
        lineage.blob(ctx, name)
        walks.append(time.perf_counter() - t)
    store.forget(home)
    shutil.rmtree(home.root, ignore_errors=True)
    h95, l95 = _p95(history) * 1000, _p95(walks) * 1000
    return [
        row(f"history of a blob with {VERSIONS:,} versions, p95", h95, "ms", target="<= 50 ms", ok=h95 <= 50),
        row(f"lineage over a {CHAIN:,}-run chain, p95", l95, "ms", target="<= 50 ms", ok=l95 <= 50,
            note="walked back from the last blob and forward from the first, alternately"),
    ]


def run() -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="localtailr-bench-history-"))
    try:
        return bench_put(folder) + bench_queries(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    from bench.__main__ import table

    print(table(run()))
