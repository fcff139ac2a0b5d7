"""Entrypoints for the runtime tests (daemon, supervisor): each a plain function."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _mark(name: str, text: str = "") -> None:
    Path(os.environ.get("MARK_DIR", ".")).joinpath(name).write_text(text or str(time.time()))


def hello():
    print("hello", os.environ.get("DATATAILR_JOB_NAME"), os.environ.get("DATATAILR_BATCH_ARG_RUNDATE"),
          flush=True)


def first_line():
    Path(os.environ["MARK_FILE"]).write_text(repr(time.time()))


def env_dump():
    import json

    keys = [k for k in os.environ if k.startswith(("DATATAILR_", "LOCALTAILR_")) or k in ("PORT", "GREETING")]
    print(json.dumps({k: os.environ[k] for k in sorted(keys)}), flush=True)


def fail_now():
    print("about to fail", file=sys.stderr, flush=True)
    raise ValueError("bad input 42")


def exit_at_once():
    sys.exit(3)


def sleep_forever():
    print("up", os.getpid(), flush=True)
    while True:
        time.sleep(0.2)


def ignore_sigterm():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ignoring SIGTERM", flush=True)
    while True:
        time.sleep(0.2)


def fork_and_exit():
    """Start two grandchildren (one in its own session) and return at once."""
    a = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    b = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    print("grandchildren", a.pid, b.pid, flush=True)
    time.sleep(0.5)


def eat_memory():
    chunks = []
    while True:
        chunks.append(bytearray(16 * 1024 * 1024))
        time.sleep(0.05)


def eat_memory_in_child():
    subprocess.run([sys.executable, "-c", "import time\nx=[]\nwhile True:\n x.append(bytearray(16<<20)); time.sleep(0.05)"])


def busy():
    while True:
        pass


def crash_service():
    print("service starting", flush=True)
    time.sleep(0.2)
    raise RuntimeError("service crashed")


def flask_app():
    from flask import Flask

    app = Flask("demo")

    @app.get("/")
    def index():
        return {"hello": os.environ.get("DATATAILR_JOB_NAME")}

    return app


def flask_app_run():
    app = flask_app()
    app.run(host="0.0.0.0", port=5000)


def fastapi_app():
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    def index():
        return {"framework": "fastapi"}

    return app


def take_port():
    """A service that binds a port already taken (exits with an error)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", int(os.environ["TAKEN_PORT"])))


def price(spot: float, strike: float, rate: float = 0.0) -> float:
    """Intrinsic value of a call."""
    return max(spot - strike, 0.0) * (1 + rate)


def helper_sum(a, b):
    return a + b


def _private():
    return "hidden"


def boom(x):
    raise ValueError(f"cannot price {x}")


def http_service():
    """A service answering HTTP on its PORT."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello from the service")

    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Hello).serve_forever()


def daemonize_and_exit():
    """Leave a grandchild behind the classic way (fork, setsid, fork), write its pid to
    MARK_DIR/escaped, and return at once."""
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(w, str(os.getpid()).encode())
            os.close(w)
            while True:
                time.sleep(0.2)
        os._exit(0)
    os.close(w)
    pid = os.read(r, 32).decode()
    Path(os.environ["MARK_DIR"], "escaped").write_text(pid)
    print("left", pid, flush=True)


def flood():
    """Write FLOOD_MIB MiB of numbered lines to stdout as fast as it can, 1 MiB a write."""
    line = 64
    per = (1 << 20) // line
    n = 0
    for _ in range(int(os.environ.get("FLOOD_MIB", "200"))):
        os.write(1, b"".join(b"%063d\n" % i for i in range(n, n + per)))
        n += per
    print(f"last {n - 1}", file=sys.stderr, flush=True)
