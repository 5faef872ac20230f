"""SHA-256 as hex, from the interpreter's own sha256 module when it has one.

``hashlib`` loads OpenSSL's libcrypto on import: 2-5 ms of a one-shot audit's start, spent on two
digests (each policy file's and the policy set's) that the built-in module computes alike. Builds
without it (``--without-builtin-hashlib-hashes``) fall back to ``hashlib``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol


class _Hash(Protocol):
    def hexdigest(self) -> str: ...


def _constructor() -> Callable[[bytes], _Hash]:
    for module in ("_sha2", "_sha256"):  # Python 3.12+, 3.11
        try:
            constructor: Callable[[bytes], _Hash] = importlib.import_module(module).sha256
        except (ImportError, AttributeError):
            continue
        return constructor
    import hashlib  # noqa: PLC0415 - only where the built-in module is missing
    return hashlib.sha256


_SHA256 = _constructor()


def sha256_hex(data: bytes) -> str:
    """The SHA-256 digest of ``data`` as 64 lowercase hex digits."""
    return _SHA256(data).hexdigest()
