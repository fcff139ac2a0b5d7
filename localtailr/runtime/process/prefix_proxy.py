"""An app's public port: a proxy that serves an app started under a path prefix at ``/`` too.

Streamlit and panel speak websockets, so a WSGI/ASGI wrapper cannot add the
``/job/<env>/<name>/`` prefix for them. They are started with that prefix as their own base
path (streamlit ``--server.baseUrlPath``, panel ``--prefix``) on an internal loopback port,
and ``start(sock, backend_port, prefix)`` serves ``sock`` (the app's public port, bound by
the caller) from a thread of the app's own process: a request whose path is not under the
prefix gets it prepended; everything else passes unchanged. Only request heads are read
(the request line and headers; a body is streamed by ``Content-Length`` or chunked
encoding); responses are piped as they come, and after a request that asks for an
``Upgrade`` (a websocket) bytes are piped both ways. A malformed request head is answered
``400`` and the connection closed. The public port accepts connections only once the
internal one does, so "the port answers" still means "the app is up".

The bootstrap loads this file by path (standard library only).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

HEAD_LIMIT = 64 * 1024
CHUNK = 64 * 1024
LINGER = 5.0  # seconds a refused client may still send before it is cut off


class BadRequest(Exception):
    pass


def rewrite_target(target: str, base: str) -> str:
    """``target`` with ``base`` (the prefix without its trailing slash) prepended, unless it
    is under ``base`` already or is not an origin-form path (``*``, ``http://...``)."""
    if not target.startswith("/") or target.startswith("//"):
        return target
    path = target.split("?", 1)[0]
    if path == base or path.startswith(base + "/"):
        return target
    return base + target


def parse_head(head: bytes, base: str) -> tuple[bytes, int | None, bool, bool]:
    """(the head with its target rewritten, the body's length or None when chunked,
    whether it asks for an upgrade, whether the client keeps the connection)."""
    text = head.decode("latin-1")  # any byte
    lines = text[:-4].split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {lines[0][:80]!r}")
    method, target, version = parts
    lengths, codings, upgrade, connection = set(), [], False, ""
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or any(c.isspace() for c in name):
            raise BadRequest(f"bad header line {line[:80]!r}")
        key, value = name.lower(), value.strip()
        if key == "content-length":
            if not (value.isascii() and value.isdigit()):
                raise BadRequest(f"bad Content-Length {value[:40]!r}")
            lengths.add(int(value))
        elif key == "transfer-encoding":
            codings += [c.strip().lower() for c in value.split(",")]
        elif key == "upgrade":
            upgrade = True
        elif key == "connection":
            connection += "," + value.lower()
    tokens = {t.strip() for t in connection.split(",")}
    if len(lengths) > 1 or (lengths and codings):
        raise BadRequest("conflicting Content-Length / Transfer-Encoding")
    if codings and codings[-1] != "chunked":
        raise BadRequest(f"unsupported Transfer-Encoding {', '.join(codings)!r}")
    length = None if codings else (lengths.pop() if lengths else 0)
    keep = "close" not in tokens and (version != "HTTP/1.0" or "keep-alive" in tokens)
    new_line = f"{method} {rewrite_target(target, base)} {version}"
    out = (new_line + text[len(lines[0]):]).encode("latin-1")
    return out, length, upgrade and "upgrade" in tokens, keep


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    while n > 0:
        data = await reader.read(min(n, CHUNK))
        if not data:
            raise ConnectionError("a body ends early")
        writer.write(data)
        await writer.drain()
        n -= len(data)


async def _copy_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ConnectionError(f"bad chunk size line {line[:40]!r}") from None
        writer.write(line)
        if size == 0:
            break
        await _copy(reader, writer, size + 2)  # the data and its CRLF
    while True:  # trailers, up to the empty line
        line = await reader.readuntil(b"\r\n")
        writer.write(line)
        if line == b"\r\n":
            break
    await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close the other side (a tunnel's, or the last answer's)."""
    while True:
        data = await reader.read(CHUNK)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


async def _requests(client: asyncio.StreamReader, upstream: asyncio.StreamWriter,
                    base: str, sent: asyncio.Queue) -> None:
    """Forward the client's requests (heads rewritten), each put in ``sent`` as (method,
    for one that asks for an upgrade a future: whether the app switched protocols), and
    None when the client sends no more; BadRequest on a malformed head. The app is not
    half-closed when the client is (many servers take that for an abort)."""
    try:
        while True:
            try:
                head = await client.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip():
                    raise BadRequest("the request head ends early") from None
                return  # the client is done sending
            except asyncio.LimitOverrunError:
                raise BadRequest(f"a request head over {HEAD_LIMIT} bytes") from None
            out, length, upgrade, keep = parse_head(head, base)
            upgraded = asyncio.get_running_loop().create_future() if upgrade else None
            upstream.write(out)
            sent.put_nowait((out.split(b" ", 1)[0].decode("latin-1"), upgraded))
            if length is None:
                await _copy_chunked(client, upstream)
            else:
                await _copy(client, upstream, length)
            await upstream.drain()
            if upgraded is not None and await upgraded:
                await _pipe(client, upstream)
                return
            if not keep:
                return
    finally:
        sent.put_nowait(None)


def parse_response(head: bytes) -> tuple[int, int | None, bool]:
    """(status, the body's length or None, whether it is chunked) of a response head."""
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not (parts[1].isascii() and parts[1].isdigit()):
        raise ConnectionError(f"the app answered a bad status line {lines[0][:80]!r}")
    length, chunked = None, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        if key == "content-length" and value.strip().isascii() and value.strip().isdigit():
            length = int(value.strip())
        elif key == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    return int(parts[1]), length, chunked


async def _next(sent: asyncio.Queue, upstream: asyncio.StreamReader):
    """(the next request sent or None, the app's first byte if it came meanwhile); or
    (False, first byte or b"") when the app speaks unasked or closes while none waits."""
    if not sent.empty():
        return sent.get_nowait(), b""
    get = asyncio.ensure_future(sent.get())
    peek = asyncio.ensure_future(upstream.read(1))
    done, _ = await asyncio.wait({get, peek}, return_when=asyncio.FIRST_COMPLETED)
    if peek not in done:
        peek.cancel()  # and waited for: the reader takes one waiting reader at a time
        await asyncio.wait({peek})
    first = b"" if peek.cancelled() else peek.result()
    if get in done:
        return get.result(), first
    get.cancel()
    return False, first


async def _responses(upstream: asyncio.StreamReader, client: asyncio.StreamWriter,
                     sent: asyncio.Queue) -> None:
    """Forward the app's answers, one a request sent (the bodies by their framing) until the
    client sends no more and all are answered, or the app closes; after a ``101``, pipe."""
    while True:
        item, first = await _next(sent, upstream)
        if not item:
            if first:  # an answer nobody asked for (a 408 before closing): passed on
                client.write(first)
                await _pipe(upstream, client)
            return
        method, upgraded = item
        while True:
            try:
                head = first + await upstream.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the app closed
            first = b""
            status, length, chunked = parse_response(head)
            client.write(head)
            if status == 101 and upgraded is not None:
                upgraded.set_result(True)
                await _pipe(upstream, client)
                return
            if status >= 200:
                break  # 100 Continue and other interim answers come before the final one
        if upgraded is not None:
            upgraded.set_result(False)
        if method == "HEAD" or status in (204, 304):
            await client.drain()
        elif chunked:
            await _copy_chunked(upstream, client)
        elif length is not None:
            await _copy(upstream, client, length)
        else:
            await _pipe(upstream, client)  # delimited by the app's closing
            return


async def _bad_request(writer: asyncio.StreamWriter, reason: str) -> None:
    body = f"bad request: {reason}\n".encode()
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                 b"Connection: close\r\nContent-Length: " + str(len(body)).encode()
                 + b"\r\n\r\n" + body)
    await writer.drain()


async def _serve_client(client_r, client_w, backend_port: int, base: str) -> None:
    try:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", backend_port, limit=HEAD_LIMIT)
    except OSError:
        client_w.write(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n"
                       b"Content-Length: 0\r\n\r\n")
        await _linger_close(client_r, client_w)
        return
    sent: asyncio.Queue = asyncio.Queue()
    requests = asyncio.ensure_future(_requests(client_r, up_w, base, sent))
    responses = asyncio.ensure_future(_responses(up_r, client_w, sent))
    try:
        await asyncio.wait({requests, responses}, return_when=asyncio.FIRST_COMPLETED)
        if not requests.done():  # the app closed first: so does the client's connection
            responses.result()
            return
        if isinstance(requests.exception(), BadRequest):
            await responses  # the answers to the good requests before it go first
            await _bad_request(client_w, str(requests.exception()))
            await _linger_close(client_r, client_w)
            return
        requests.result()
        await responses
        if client_w.can_write_eof():
            client_w.write_eof()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        pass  # either side went away: end both
    finally:
        requests.cancel()
        responses.cancel()
        await _close(up_w)
        await _close(client_w)


async def _linger_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close after a final answer, reading what the client still sends for a while: closing
    with unread input resets the connection, which can lose the answer on its way."""
    try:
        writer.write_eof()
        await asyncio.wait_for(_discard(reader), LINGER)
    except (TimeoutError, ConnectionError, OSError):
        pass
    await _close(writer)


async def _discard(reader: asyncio.StreamReader) -> None:
    while await reader.read(CHUNK):
        pass


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


def _wait_for(port: int, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


async def _main(sock: socket.socket, backend_port: int, base: str,
                stop: threading.Event) -> None:
    running: set[asyncio.Task] = set()  # the loop holds tasks weakly: a stalled one stays here

    async def handle(reader, writer):
        task = asyncio.current_task()
        if task is not None:
            running.add(task)
            task.add_done_callback(running.discard)
        await _serve_client(reader, writer, backend_port, base)

    server = await asyncio.start_server(handle, sock=sock, limit=HEAD_LIMIT)
    async with server:  # (not an executor's stop.wait: its thread would hold up the exit)
        while not stop.is_set():
            await asyncio.sleep(0.5)
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


def start(sock: socket.socket, backend_port: int, prefix: str) -> threading.Event:
    """Serve ``sock`` (bound, not listening) from a daemon thread once ``backend_port``
    accepts; the returned event, set, stops it."""
    stop = threading.Event()
    base = "/" + prefix.strip("/")

    def run() -> None:
        if _wait_for(backend_port, stop):
            asyncio.run(_main(sock, backend_port, base, stop))

    threading.Thread(target=run, name="prefix-proxy", daemon=True).start()
    return stop


def bound_socket(port: int = 0) -> socket.socket:
    """A loopback TCP socket bound to ``port`` (0: a free one), not yet listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock
