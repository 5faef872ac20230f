"""The kernel command line, split the way the kernel itself splits it.

:func:`parse_cmdline` is a transcription of ``next_arg()`` (``lib/cmdline.c``) driven the way
``parse_args()`` (``kernel/params.c``) drives it, so a policy sees exactly the parameters the kernel
saw: quoting, the first ``=``, and the ``--`` that hands the rest to init all behave as at boot.
"""

from __future__ import annotations

from agent.core.record import record

# The kernel's isspace() over ASCII. (Its Latin-1 table also counts byte 0xA0, which cannot
# appear on its own in the UTF-8 text we are given.)
_SPACE = frozenset(" \t\n\v\f\r")


def _key(name: str) -> str:
    """Comparison form of a name: parameq() treats '-' and '_' as the same character."""
    return name.replace("-", "_")


@record
class Param:
    """One kernel parameter as written on the command line (quotes removed)."""

    name: str
    """The name as written, e.g. ``nohz-full``; compare through :class:`KernelCmdline`."""
    value: str | None
    """Text after the first ``=``; ``None`` for a bare flag such as ``quiet``."""


@record
class KernelCmdline:
    """A parsed ``/proc/cmdline``. Lookups treat ``-`` and ``_`` in names as equivalent."""

    raw: str
    """The text that was parsed."""
    params: tuple[Param, ...]
    """Kernel parameters in order, up to a standalone ``--``."""
    init_args: tuple[str, ...]
    """Arguments after ``--`` (passed to init), rejoined as ``name=value`` like the kernel does."""

    def has(self, name: str) -> bool:
        """Whether ``name`` occurs at all, with or without a value."""
        return self.last(name) is not None

    def values(self, name: str) -> list[str | None]:
        """Values of every occurrence of ``name`` in order (``None`` for a bare occurrence)."""
        key = _key(name)
        return [p.value for p in self.params if _key(p.name) == key]

    def last(self, name: str) -> Param | None:
        """The last occurrence of ``name`` (the one that takes effect), or ``None``."""
        key = _key(name)
        for param in reversed(self.params):
            if _key(param.name) == key:
                return param
        return None


def _skip_spaces(text: str, i: int) -> int:
    while i < len(text) and text[i] in _SPACE:
        i += 1
    return i


def _next_arg(text: str, start: int) -> tuple[str, str | None, int]:
    """next_arg(): one ``(param, value, index of the next argument)`` from ``text[start:]``.

    Quotes toggle a "no splitting" state and are only removed where the kernel removes them:
    a quote opening the token or the value, and a quote ending the token.
    """
    i = start
    quoted = in_quote = i < len(text) and text[i] == '"'
    if quoted:
        i += 1
    begin = i
    equals = -1
    while i < len(text) and (in_quote or text[i] not in _SPACE):
        # `equals == 0` in C: an '=' as the very first character does not split.
        if equals < 0 and text[i] == "=" and i > begin:
            equals = i
        if text[i] == '"':
            in_quote = not in_quote
        i += 1
    end = i  # one past the token; the kernel NULs out a closing quote at end - 1
    param_end = end
    value: str | None = None
    if equals >= 0:
        param_end = equals
        value_begin = equals + 1
        opened = value_begin < end and text[value_begin] == '"'
        if opened:
            value_begin += 1
        closed = (opened or quoted) and text[end - 1] == '"'
        # max(): in `a="` the one quote both opens and closes the value.
        value = text[value_begin : max(value_begin, end - 1 if closed else end)]
    elif quoted and end > begin and text[end - 1] == '"':
        param_end = end - 1
    next_start = _skip_spaces(text, end + 1 if end < len(text) else end)
    return text[begin:param_end], value, next_start


def parse_cmdline(text: str) -> KernelCmdline:
    """Split a kernel command line; never raises.

    A NUL ends the command line, as it ends the C string the kernel parses.
    """
    line = text.split("\0", 1)[0]
    params: list[Param] = []
    init_args: list[str] = []
    after_dashes = False
    i = _skip_spaces(line, 0)
    while i < len(line):
        name, value, i = _next_arg(line, i)
        if after_dashes:
            # set_init_arg()/repair_env_string() rejoin the pair without the value's quotes.
            init_args.append(name if value is None else f"{name}={value}")
        elif value is None and name == "--":
            after_dashes = True
        else:
            params.append(Param(name, value))
    return KernelCmdline(raw=text, params=tuple(params), init_args=tuple(init_args))
