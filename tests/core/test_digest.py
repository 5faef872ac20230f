"""``sha256_hex`` is SHA-256, whichever module computes it."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.core import digest
from tests.support import need


@given(st.binary(max_size=4096))
def test_equals_hashlib(data: bytes) -> None:
    assert digest.sha256_hex(data) == hashlib.sha256(data).hexdigest()


def test_known_answer() -> None:  # FIPS 180-2 "abc"
    assert digest.sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def builtin_sha256() -> bool:
    """Whether this interpreter has its own sha256 module (builds may leave it out)."""
    return any(importlib.util.find_spec(name) for name in ("_sha2", "_sha256"))


def test_the_builtin_module_serves_this_interpreter() -> None:
    need(builtin_sha256(), "this Python was built without its own sha256 module")
    assert digest._SHA256 is not hashlib.sha256
    assert type(digest._SHA256(b"")).__module__ in {"_sha2", "_sha256"}


def test_without_a_builtin_module_hashlib_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def without_builtin(name: str, package: str | None = None) -> ModuleType:
        if name in {"_sha2", "_sha256"}:
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", without_builtin)
    assert digest._constructor() is hashlib.sha256
