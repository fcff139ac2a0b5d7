"""Stand-ins for ``streamlit`` and ``panel`` that serve for real: ``python -m <name>`` runs
the page script (as the framework would) and then answers HTTP on its port, only under its
base path (``--server.baseUrlPath`` / ``--prefix``), with the path it saw and its argv;
``GET .../quit`` ends it."""

from __future__ import annotations

import zipfile
from pathlib import Path

MAIN = '''
import json, runpy, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = sys.argv[1:]


def opt(name):
    return args[args.index(name) + 1] if name in args else None


port = int(opt("--server.port") or opt("--port"))
base = "/" + (opt("--server.baseUrlPath") or opt("--prefix") or "").strip("/")
runpy.run_path(args[1], run_name="__main__")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0]
        ok = base == "/" or path == base or path.startswith(base + "/")
        body = json.dumps({"path": self.path, "argv": args}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if path.endswith("/quit"):  # the server ends and ``python -m`` returns
            threading.Thread(target=server.shutdown).start()


print("serving", port, base, flush=True)
server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.serve_forever()
'''


def install(folder: Path, *names: str) -> None:
    """Write stand-in packages ``names`` (e.g. "streamlit", "panel") into ``folder``."""
    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / "__init__.py").write_text("")
        (folder / name / "__main__.py").write_text(MAIN)


def wheel(folder: Path, name: str) -> Path:
    """A wheel of the stand-in ``name`` in ``folder`` (for a job's image: ``name @ file://``)."""
    path = folder / f"{name}-0.0.1-py3-none-any.whl"
    info = f"{name}-0.0.1.dist-info"
    files = {f"{name}/__init__.py": "", f"{name}/__main__.py": MAIN,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: localtailr-tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{n},,\n" for n in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as z:
        for n, text in files.items():
            z.writestr(n, text)
    return path
