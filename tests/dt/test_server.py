"""The daemon's dt socket (``dt/server.py``) answering on worker threads it keeps: each keeps
its database connection between calls, a stuck client holds up no one, idle workers end."""

import marshal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from localtailr.dt import client, server
from localtailr.platform import kv
from localtailr.platform.context import context


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "dt-call"]


def _wait_for(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def dt_socket(localtailr_home, monkeypatch):
    monkeypatch.setenv("LOCALTAILR_HOME", str(localtailr_home.root))
    kv.put(context(), "k", "v")
    srv = server.serve(localtailr_home.home)
    yield srv
    srv.close()


def _get(key: str, capfdbinary) -> tuple[int | None, bytes]:
    code = client.through_daemon(["kv", "get", key])
    return code, capfdbinary.readouterr().out


def test_sequential_calls_are_answered_by_one_kept_worker(dt_socket, capfdbinary):
    before = {t.ident for t in _workers()}
    for _ in range(20):
        assert _get("k", capfdbinary) == (0, b"v\n")
        # as between two dt processes: the worker is free again before the next call
        _wait_for(lambda: dt_socket.workers._idle == 1)
    kept = [t for t in _workers() if t.ident not in before]
    assert len(kept) == 1  # one worker answered them all, and waits for the next
    assert _get("missing", capfdbinary)[0] == 1  # a failed call leaves it working
    _wait_for(lambda: dt_socket.workers._idle == 1)
    assert _get("k", capfdbinary) == (0, b"v\n")
    assert [t for t in _workers() if t.ident not in before] == kept


def test_a_stuck_client_holds_up_no_one(dt_socket, capfdbinary):
    stuck = []
    for _ in range(3):  # connected, never sending a frame: each holds a worker
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(dt_socket.path)
        stuck.append(sock)
    try:
        assert _get("k", capfdbinary) == (0, b"v\n")
    finally:
        for sock in stuck:
            sock.close()


def test_concurrent_calls_all_answered(dt_socket):
    def call(_):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(dt_socket.path)
            request = marshal.dumps({"argv": ["kv", "get", "k"], "user": None,
                                     "environment": None, "run_id": None, "stdin": None})
            sock.sendall(len(request).to_bytes(4, "big") + request)
            header = marshal.loads(client._recv(sock, int.from_bytes(client._recv(sock, 4), "big")))
            return header["code"], client._recv(sock, header["stdout"])

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(call, range(200))) == {(0, b"v\n")}


def test_idle_workers_end(dt_socket, capfdbinary, monkeypatch):
    monkeypatch.setattr(server.Workers, "IDLE_SECONDS", 0.2)
    before = {t.ident for t in _workers()}
    assert _get("k", capfdbinary) == (0, b"v\n")
    _wait_for(lambda: not [t for t in _workers() if t.ident not in before])
    assert _get("k", capfdbinary) == (0, b"v\n")  # a new worker when none is idle


def test_no_call_is_lost_when_a_worker_ends_as_it_is_given_one():
    """A worker timing out while a call is queued for it takes the call (no call waits
    forever for a worker that has gone)."""
    done = []
    workers = server.Workers(lambda n: done.append(n), name="test-worker")
    workers.IDLE_SECONDS = 0.001
    for n in range(2000):
        workers.submit(n)
        if n % 7 == 0:
            time.sleep(0.001)
    _wait_for(lambda: len(done) == 2000)
    assert sorted(done) == list(range(2000))
    _wait_for(lambda: not [t for t in threading.enumerate() if t.name == "test-worker"])
