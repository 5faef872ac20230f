"""Validation of the glob patterns policies use (hostnames, sysctl keys, sysfs paths)."""

from __future__ import annotations

import re

_HOST_CHARS = re.compile(r"[A-Za-z0-9.*?\[\]!_-]+")
_PATH_COMPONENT = re.compile(r"[A-Za-z0-9_.:@+*?\[\]!-]+")


def bracket_problem(pattern: str) -> str | None:
    """Why ``pattern`` has a malformed ``[...]`` class, or None.

    fnmatch quietly treats an unclosed ``[`` as a literal, so ``trd-[0-9`` would match nothing
    the author meant; the linter refuses it instead.
    """
    i = 0
    while i < len(pattern):
        if pattern[i] == "]":
            return f"']' at position {i + 1} closes no '['"
        if pattern[i] == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":  # a leading ']' is a literal member
                j += 1
            end = pattern.find("]", j)
            if end < 0:
                return f"'[' at position {i + 1} is never closed"
            if end == j:
                return f"empty character class at position {i + 1}"
            i = end
        i += 1
    return None


def hostname_glob_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable hostname glob, or None."""
    if not pattern:
        return "empty hostname pattern"
    if not _HOST_CHARS.fullmatch(pattern):
        return f"hostname pattern {pattern!r} has characters no hostname contains"
    return bracket_problem(pattern)


def path_glob_problem(pattern: str, separator: str) -> str | None:
    """Why ``pattern`` is not a safe relative path glob with ``separator``, or None."""
    if not pattern:
        return "empty path"
    if pattern.startswith("/"):
        return "path must be relative (no leading '/')"
    for part in pattern.split(separator):
        if part in ("", ".", ".."):
            return f"path component {part!r} is not allowed"
        if not _PATH_COMPONENT.fullmatch(part):
            return f"path component {part!r} has characters a kernel file name does not use"
    return bracket_problem(pattern)
