"""A child process that streams a large blob in and out, printing its memory figures."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

STREAM_CHILD = textwrap.dedent("""
    import json, sys
    from localtailr import Blob

    def status(field):  # VmHWM starts afresh at exec (ru_maxrss may carry the parent's)
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

    src, dst = sys.argv[1], sys.argv[2]
    Blob().exists("warm-up")
    base = status("VmRSS")
    Blob().put_file("big/file.bin", src)
    Blob().get_file("big/file.bin", dst)
    print(json.dumps({"base": base, "peak": status("VmHWM")}))
""")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
