"""A secret at rest, and a key rotation that loses nothing."""

import sqlite3

from localtailr import Secrets
from localtailr.core.home import Home
from localtailr.platform import kv
from localtailr.platform.context import context


def main():
    secrets = Secrets()
    secrets.put("warehouse_password", "correct horse battery staple")
    home = Home.current()

    row = sqlite3.connect(home.db_path).execute(
        "SELECT token FROM secrets WHERE key = 'warehouse_password'").fetchone()
    print("what the database holds:", bytes(row[0])[:40], "...")
    assert b"correct horse" not in bytes(row[0])
    print("listing shows names only:", [e["key"] for e in secrets.ls()])

    key_before = home.key_file.read_text()
    n = kv.rotate_key(context())
    print(f"rotated the key, re-encrypted {n} secret(s)")
    assert home.key_file.read_text() != key_before
    print("still readable:", secrets.get("warehouse_password"))


if __name__ == "__main__":
    main()
