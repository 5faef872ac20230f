"""Text that XML 1.0 can carry: host data may hold characters no XML document may contain."""

from __future__ import annotations

import re

# XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
# Everything else (C0 controls, lone surrogates from surrogateescape, U+FFFE/U+FFFF) cannot be
# written at all, not even as a character reference, so it is shown as a Python-style escape.
# Bidirectional controls are valid XML but reorder what a reader sees ("Trojan Source"): they
# are shown as escapes too.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
                      "|[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def xml_safe(text: str) -> str:
    """``text`` with every character XML 1.0 forbids (and every bidi control) replaced by a
    visible escape (``\\x1b``, ``\\u202e``)."""
    return _NOT_XML.sub(_escape, text)
