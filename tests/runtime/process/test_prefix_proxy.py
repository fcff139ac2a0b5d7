"""Issue 11: the proxy on a streamlit/panel app's public port serves it at ``/`` and under
``/job/<env>/<name>/`` (a real stdlib HTTP server behind it, real sockets, a real websocket
upgrade): keep-alive, streamed chunked and big bodies, half-close, clients that go away,
and bad request heads answered 400."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.http_backend import frame, read_frame, start_backend, websocket_open

from localtailr.runtime.process import prefix_proxy
from localtailr.runtime.process.prefix_proxy import BadRequest, parse_head, rewrite_target

PREFIX = "/job/dev/my-app/"
BASE = "/job/dev/my-app"


@pytest.fixture
def backend():
    server = start_backend()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(backend):
    sock = prefix_proxy.bound_socket()
    port = sock.getsockname()[1]
    stop = prefix_proxy.start(sock, backend.server_address[1], PREFIX)
    _wait_answers(port)
    yield port
    stop.set()


def _wait_answers(port: int) -> None:
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"port {port} never answered")


def _get(conn: http.client.HTTPConnection, path: str, **kw) -> dict:
    conn.request(kw.pop("method", "GET"), path, **kw)
    response = conn.getresponse()
    assert response.status == 200, response.read()
    return json.loads(response.read())


def _raw(port: int, data: bytes) -> bytes:
    """Send ``data``, half-close, and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def test_paths_outside_the_prefix_get_it_and_paths_under_it_are_kept():
    assert rewrite_target("/", BASE) == "/job/dev/my-app/"
    assert rewrite_target("/?x=1", BASE) == "/job/dev/my-app/?x=1"
    assert rewrite_target("/_stcore/stream", BASE) == "/job/dev/my-app/_stcore/stream"
    assert rewrite_target("/job/dev/my-app", BASE) == "/job/dev/my-app"
    assert rewrite_target("/job/dev/my-app/a?b", BASE) == "/job/dev/my-app/a?b"
    assert rewrite_target("/job/dev/my-app?b", BASE) == "/job/dev/my-app?b"
    assert rewrite_target("/job/dev/my-apps", BASE) == "/job/dev/my-app/job/dev/my-apps"
    assert rewrite_target("*", BASE) == "*"
    assert rewrite_target("http://h/x", BASE) == "http://h/x"


def test_keep_alive_serves_several_requests_on_one_connection(backend, proxy):
    conn = http.client.HTTPConnection("127.0.0.1", proxy, timeout=30)
    answers = [_get(conn, "/"), _get(conn, "/?x=1"), _get(conn, "/job/dev/my-app/static/a.js"),
               _get(conn, "/form", method="POST", body=b"a=1&b=2")]
    conn.close()
    assert [a["path"] for a in answers] == [
        "/job/dev/my-app/", "/job/dev/my-app/?x=1", "/job/dev/my-app/static/a.js",
        "/job/dev/my-app/form"]
    assert answers[3]["sha256"] == hashlib.sha256(b"a=1&b=2").hexdigest()
    assert len({a["client_port"] for a in answers}) == 1  # one upstream connection


def test_a_big_chunked_body_is_streamed_through(backend, proxy):
    piece = bytes(range(256)) * 1024  # 256 KiB
    body = (piece for _ in range(32))  # 8 MiB, sent chunked
    conn = http.client.HTTPConnection("127.0.0.1", proxy, timeout=60)
    answer = _get(conn, "/upload", method="PUT", body=body, encode_chunked=True)
    assert answer["path"] == "/job/dev/my-app/upload"
    assert answer["length"] == 32 * len(piece)
    assert answer["sha256"] == hashlib.sha256(piece * 32).hexdigest()
    assert _get(conn, "/after")["path"] == "/job/dev/my-app/after"  # the stream is in step
    conn.close()


def test_a_big_sized_body_then_a_pipelined_request(backend, proxy):
    body = b"x" * (3 << 20)
    data = (b"POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body + b"GET /next HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    out = _raw(proxy, data)
    assert out.count(b"HTTP/1.1 200") == 2, out[:300]
    assert b'"path": "/job/dev/my-app/big"' in out and b'"length": 3145728' in out
    assert b'"path": "/job/dev/my-app/next"' in out


@pytest.mark.parametrize("path", ["/_stcore/stream", "/job/dev/my-app/_stcore/stream"])
def test_a_websocket_upgrade_is_piped_both_ways(backend, proxy, path):
    sock, head = websocket_open(proxy, path)
    assert head.startswith(b"HTTP/1.1 101")
    for text in ("hello", "x" * 70000):  # a small frame and one over 64 KiB
        sock.sendall(frame(1, text.encode(), masked=True))
        opcode, data = read_frame(sock)
        assert (opcode, data.decode()) == (1, f"/job/dev/my-app/_stcore/stream {text}")
    sock.sendall(frame(8, b"", masked=True))
    assert read_frame(sock)[0] == 8
    sock.close()


def test_a_half_closed_client_still_gets_its_answer(backend, proxy):
    out = _raw(proxy, b"GET /half HTTP/1.1\r\nHost: h\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and b"/job/dev/my-app/half" in out


def test_a_client_that_goes_away_mid_body_does_not_stop_the_proxy(backend, proxy):
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", proxy), timeout=30) as sock:
            sock.sendall(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\nabc")
        with socket.create_connection(("127.0.0.1", proxy), timeout=30) as sock:
            sock.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn = http.client.HTTPConnection("127.0.0.1", proxy, timeout=30)
    assert _get(conn, "/still")["path"] == "/job/dev/my-app/still"
    conn.close()


@pytest.mark.parametrize("bad", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\n\r\n",
    b"GET / FTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET / HTTP/1.1\r\n folded: header\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n",  # a digit to isdigit(), not to int()
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n",  # the head never ends
])
def test_a_malformed_request_head_is_answered_400_and_closed(backend, proxy, bad):
    out = _raw(proxy, bad)
    assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n"), out[:200]
    assert b"Connection: close" in out and out.count(b"\r\n\r\n") == 1
    assert backend.seen == []  # the app saw nothing


def test_a_bad_head_after_a_good_one_still_answers_the_good_one_first(backend, proxy):
    with socket.create_connection(("127.0.0.1", proxy), timeout=30) as sock:
        sock.sendall(b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\n")
        first = b""
        while b"sha256" not in first:
            first += sock.recv(65536)
        sock.sendall(b"BROKEN\r\n\r\n")
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    assert first.startswith(b"HTTP/1.1 200") and rest.startswith(b"HTTP/1.1 400")
    assert backend.seen == ["/job/dev/my-app/ok"]


def test_the_public_port_accepts_only_once_the_app_does():
    spare = prefix_proxy.bound_socket()
    backend_port = spare.getsockname()[1]
    spare.close()
    sock = prefix_proxy.bound_socket()
    port = sock.getsockname()[1]
    stop = prefix_proxy.start(sock, backend_port, PREFIX)
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
        server = start_backend(backend_port)
        _wait_answers(port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        assert _get(conn, "/")["path"] == PREFIX
        conn.close()
        server.shutdown()
        server.server_close()
        out = _raw(port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 502 Bad Gateway")  # the app went away
    finally:
        stop.set()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_head_is_rewritten_or_refused_with_bad_request(data):
    head = data.replace(b"\r\n\r\n", b"") + b"\r\n\r\n"
    try:
        out, length, _upgrade, _keep = parse_head(head, BASE)
    except BadRequest:
        return
    assert out.endswith(b"\r\n\r\n") and length is None or length >= 0
    request_line = out.split(b"\r\n", 1)[0].decode("latin-1")
    target = request_line.split(" ")[1]
    assert not target.startswith("/") or target.startswith("//") or target.startswith(BASE)


def test_the_app_is_not_half_closed_after_a_last_request(backend, proxy):
    """Servers such as uvicorn (streamlit's) take a half-close for an abort: after a request
    that says ``Connection: close``, the proxy waits for the answer, not closing first."""
    with socket.create_connection(("127.0.0.1", proxy), timeout=30) as sock:
        sock.sendall(b"GET /eof-check HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    assert out.startswith(b"HTTP/1.1 200") and b'"eof_seen": false' in out


def test_answers_without_a_body_keep_the_connection_in_step(backend, proxy):
    conn = http.client.HTTPConnection("127.0.0.1", proxy, timeout=30)
    conn.request("HEAD", "/head")
    head = conn.getresponse()
    assert head.status == 200 and int(head.getheader("Content-Length")) > 0 and head.read() == b""
    conn.request("GET", "/no-content")
    empty = conn.getresponse()
    assert empty.status == 204 and empty.read() == b""
    assert _get(conn, "/after")["path"] == "/job/dev/my-app/after"
    conn.close()


def test_a_refused_upgrade_leaves_plain_http_and_a_pipelined_upgrade_waits_its_turn(backend,
                                                                                   proxy):
    with socket.create_connection(("127.0.0.1", proxy), timeout=30) as sock:
        sock.sendall(b"GET /no-ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: eA==\r\n\r\n"
                     b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n"
                     b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: eA==\r\n\r\n")
        out = b""
        while out.count(b"HTTP/1.1 ") < 3 or not out.endswith(b"\r\n\r\n"):
            out += sock.recv(65536)
        sock.sendall(frame(1, b"hi", masked=True))
        opcode, data = read_frame(sock)
    assert re.findall(rb"HTTP/1.1 (\d{3})", out) == [b"404", b"200", b"101"]
    assert data == b"/job/dev/my-app/ws hi"


def test_a_connection_the_app_closes_while_idle_is_closed_to_the_client(backend, proxy):
    """A keep-alive connection the app ends (its idle timeout) is ended to the client too,
    which then retries on a new one, instead of waiting on an answer that cannot come."""
    with socket.create_connection(("127.0.0.1", proxy), timeout=30) as sock:
        sock.sendall(b"GET /then-close HTTP/1.1\r\nHost: h\r\n\r\n")
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    assert out.startswith(b"HTTP/1.1 200") and b"/job/dev/my-app/then-close" in out
