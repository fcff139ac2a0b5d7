"""A small real HTTP/1.1 server for proxy tests (standard library only): it answers every
request with what it saw (method, path, the connection's client port, the body's sha256 and
length; chunked request bodies decoded; for ``.../eof-check`` whether the client
half-closed), ``.../no-content`` with 204 (``.../then-close``: the connection is then
closed, as a server's keep-alive timeout does), and a websocket upgrade with ``101`` (then it
echoes the text frames it gets; ``.../no-ws`` refuses it with 404). Plus the client side of a minimal websocket."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def read_exact(f, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = f.read(n - len(data)) if hasattr(f, "read") else f.recv(n - len(data))
        if not more:
            raise ConnectionError("closed early")
        data += more
    return data


def read_frame(f) -> tuple[int, bytes]:
    """(opcode, payload) of one websocket frame from a file or socket."""
    b0, b1 = read_exact(f, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exact(f, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(f, 8))[0]
    mask = read_exact(f, 4) if b1 & 0x80 else b""
    data = read_exact(f, n)
    if mask:
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
    return b0 & 0x0F, data


def frame(opcode: int, payload: bytes, masked: bool) -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode])
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or ""):
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return data
                data += read_exact(self.rfile, size)
                self.rfile.readline()
        return read_exact(self.rfile, int(self.headers.get("Content-Length") or 0))

    def _answer(self) -> None:
        upgrade = (self.headers.get("Upgrade") or "").lower() == "websocket"
        if upgrade and "/no-ws" not in self.path:
            self._websocket()
            return
        body = self._body()
        if self.path.endswith("/no-content"):
            self.server.seen.append(self.path)  # type: ignore[attr-defined]
            self.send_response(204)
            self.end_headers()
            return
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        out = json.dumps({"method": self.command, "path": self.path,
                          "client_port": self.client_address[1], "length": len(body),
                          "sha256": hashlib.sha256(body).hexdigest(),
                          "eof_seen": self._eof_seen() if "/eof-check" in self.path else None,
                          }).encode()
        self.send_response(404 if upgrade else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)
        if self.path.endswith("/then-close"):
            self.close_connection = True  # an idle keep-alive connection the app ends

    do_GET = do_POST = do_PUT = do_HEAD = _answer  # noqa: N815

    def _eof_seen(self) -> bool:
        """Whether the client half-closed the connection (waiting up to a second for it)."""
        readable, _, _ = select.select([self.connection], [], [], 1.0)
        return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
    def _websocket(self) -> None:
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", ws_accept(self.headers["Sec-WebSocket-Key"]))
        self.end_headers()
        self.wfile.flush()
        while True:
            opcode, data = read_frame(self.rfile)
            if opcode == 8:
                self.wfile.write(frame(8, data, masked=False))
                break
            self.wfile.write(frame(opcode, f"{self.path} {data.decode()}".encode(), False))
            self.wfile.flush()
        self.close_connection = True

    def log_message(self, fmt, *args):
        pass


def start_backend(port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def websocket_open(port: int, path: str) -> tuple[socket.socket, bytes]:
    """A websocket client connection to ``path``: (the socket, the response head)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += read_exact(sock, 1)
    assert ws_accept(key).encode() in head, head
    return sock, head
