"""``sha256``: the interpreter's built-in SHA-256, the same digests as ``hashlib.sha256``.

``hashlib`` loads OpenSSL first (~2 ms); a cached ``localtailr run`` hashes its script's
header and a cold one an image key, each with this.
"""

try:
    from _sha256 import sha256  # Python 3.11
except ImportError:  # pragma: no cover - the module's name on other versions
    try:
        from _sha2 import sha256  # Python 3.12+
    except ImportError:
        from hashlib import sha256  # a build without them

__all__ = ["sha256"]
