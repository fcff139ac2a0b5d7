"""Stream a large file in and out of blob storage with flat memory."""

import hashlib
import os
import resource
import sys
import tempfile
from pathlib import Path

from localtailr import Blob


def main(mib: int = 256):
    blob = Blob()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.bin"
        chunk = os.urandom(1 << 20)
        digest = hashlib.sha256()
        with open(src, "wb") as f:
            for _ in range(mib):
                f.write(chunk)
                digest.update(chunk)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        blob.put_file("datasets/big.bin", src)
        blob.get_file("datasets/big.bin", Path(tmp) / "copy.bin")
        grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        info = blob.stat("datasets/big.bin")
        print(f"stored {info['size'] >> 20} MiB, sha256 {info['sha256'][:16]}...")
        assert info["sha256"] == digest.hexdigest()
        print(f"peak memory grew by {grew:.0f} MiB while copying {mib} MiB in and out")
    try:
        blob.put_blob("../../etc/passwd", b"nope")
    except ValueError as e:
        print("refused:", e)
    print("blobs under datasets/:", blob.ls("datasets"))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 256)
