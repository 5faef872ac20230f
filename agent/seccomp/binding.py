"""pyseccomp, imported here for the rest of hostguard.

pyseccomp looks libseccomp up when it is imported (``ctypes.util.find_library``, which asks
``ldconfig -p``, that is ld.so.cache, then gcc and ld) and raises a bare ``RuntimeError`` when
it is not found, as in a container before ``ldconfig`` ran. Here that becomes
:class:`~agent.core.native.MissingLibrary`, which the command line tells in one line.
(:mod:`agent.seccomp.libseccomp`, the child process, imports pyseccomp itself: it starts only
after this module has been imported in its parent.)
"""

from __future__ import annotations

from agent.core.native import MissingLibrary

try:
    import pyseccomp
except RuntimeError as exc:
    raise MissingLibrary("libseccomp", "libseccomp.so.2", "seccomp checks and profiles",
                         "libseccomp2") from exc

__all__ = ["pyseccomp"]
