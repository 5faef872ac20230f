"""The error for a native library that cannot be found at run time (through ctypes)."""

from __future__ import annotations


class MissingLibrary(RuntimeError):
    """A shared library a command needs is not on this host (or not where the loader looks):
    the command line says so in one line and exits 2."""

    def __init__(self, name: str, soname: str, needed_by: str, package: str) -> None:
        super().__init__(f"{name} ({soname}) cannot be found: {needed_by} need it (Debian: "
                         f"apt install {package}; after adding a library, run ldconfig)")
        self.name = name
