"""The Fernet keys that encrypt secrets at rest.

The key file holds one key a line, newest first; all of them decrypt, the
first encrypts (``MultiFernet``). ``LOCALTAILR_SECRET_KEY`` (comma-separated
keys) overrides the file. Rotation adds a new key in front, re-encrypts every
secret, then drops the old keys once no secret uses them, so a crash at any step
leaves every secret readable. The key file is changed, and secrets are encrypted,
only under the database's write lock (``platform/kv.py``).
"""

from __future__ import annotations

import os

from ..core import settings
from ..core.errors import SecretKeyError
from ..core.home import Home

ENV_VAR = settings.SECRET_KEY.name


def _parse(text: str, source: str) -> list[bytes]:
    from cryptography.fernet import Fernet  # cryptography (~40 ms): only when secrets are used

    keys = [k.strip().encode() for k in text.replace(",", "\n").splitlines() if k.strip()]
    if not keys:
        raise SecretKeyError(f"no secret key in {source}")
    for k in keys:
        try:
            Fernet(k)
        except (ValueError, TypeError):
            raise SecretKeyError(
                f"{source} holds a malformed key: a key is 32 url-safe base64-encoded bytes"
                " (make one with `localtailr secret new-key`)"
            ) from None
    return keys


def keys(home: Home) -> list[bytes]:
    """The keys in use, newest first; creates the key file (0600) at first use."""
    env = os.environ.get(ENV_VAR)
    if env:
        return _parse(env, ENV_VAR)
    path = home.key_file
    if not path.exists():
        _create_key_file(home)
    return _parse(path.read_text(), str(path))


def _create_key_file(home: Home) -> None:
    # Written whole to a temporary file, then linked into place: another process
    # never reads a half-written key file, and the first one to link wins.
    home.ensure()
    path = home.key_file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            # cryptography (~40 ms): only when secrets are used
            from cryptography.fernet import Fernet

            f.write(Fernet.generate_key() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
    finally:
        tmp.unlink(missing_ok=True)


def fernet(home: Home):
    return multi(keys(home))


def new_key() -> bytes:
    from cryptography.fernet import Fernet  # cryptography (~40 ms): only when secrets are used

    return Fernet.generate_key()


def multi(key_list: list[bytes]):
    """A MultiFernet of ``key_list``: the first encrypts, all decrypt."""
    # cryptography is imported on first use: it costs ~30 ms, which a job that
    # never reads a secret should not pay.
    from cryptography.fernet import Fernet, MultiFernet

    return MultiFernet([Fernet(k) for k in key_list])


def all_under(key: bytes, tokens: list[bytes]) -> bool:
    """Whether every token decrypts with ``key`` alone."""
    # cryptography (~40 ms): only when secrets are used
    from cryptography.fernet import Fernet, InvalidToken

    f = Fernet(key)
    try:
        for token in tokens:
            f.decrypt(token)
    except InvalidToken:
        return False
    return True


def encrypt(home: Home, value: str) -> bytes:
    return fernet(home).encrypt(value.encode())


def decrypt(home: Home, token: bytes, name: str) -> str:
    from cryptography.fernet import InvalidToken  # ~40 ms: only when secrets are used

    try:
        return fernet(home).decrypt(token).decode()
    except InvalidToken:
        source = ENV_VAR if os.environ.get(ENV_VAR) else str(home.key_file)
        raise SecretKeyError(
            f"secret {name!r} cannot be decrypted with the key in {source}:"
            " the key was changed or lost; restore the key that encrypted it"
        ) from None


def write_keys(home: Home, new_keys: list[bytes]) -> None:
    if os.environ.get(ENV_VAR):
        raise SecretKeyError(
            f"keys come from {ENV_VAR}; unset it to rotate the key file, or rotate by hand"
        )
    home.write_private(home.key_file, b"\n".join(new_keys) + b"\n")
