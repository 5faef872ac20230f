"""``sha256_hex`` is SHA-256 in lowercase hex."""

from __future__ import annotations

from agent.core import digest


def test_known_answers() -> None:  # FIPS 180-2 "abc", and the empty message
    assert digest.sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert digest.sha256_hex(b"") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
