"""parse_cmdline() against the kernel's next_arg()/parse_args() behaviour."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.host.cmdline import KernelCmdline, Param, parse_cmdline


def pairs(line: KernelCmdline) -> list[tuple[str, str | None]]:
    return [(p.name, p.value) for p in line.params]


def test_trading_host_line() -> None:
    line = parse_cmdline(
        "BOOT_IMAGE=/vmlinuz-6.1.0-18-amd64 root=UUID=0b1c ro quiet "
        "isolcpus=managed_irq,domain,2-15 nohz_full=2-15 rcu_nocbs=2-15 idle=poll\n"
    )
    assert pairs(line) == [
        ("BOOT_IMAGE", "/vmlinuz-6.1.0-18-amd64"),
        ("root", "UUID=0b1c"),  # split at the first '=' only
        ("ro", None),
        ("quiet", None),
        ("isolcpus", "managed_irq,domain,2-15"),
        ("nohz_full", "2-15"),
        ("rcu_nocbs", "2-15"),
        ("idle", "poll"),
    ]
    assert line.init_args == ()


def test_raw_is_the_text_given() -> None:
    text = "  quiet  panic=1\n"
    assert parse_cmdline(text).raw == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('dyndbg="file x +p"', [("dyndbg", "file x +p")]),
        ('"dyndbg=file x +p"', [("dyndbg", "file x +p")]),  # the whole param quoted
        ('"quiet"', [("quiet", None)]),
        ('a="" b', [("a", ""), ("b", None)]),
        ("a= b", [("a", ""), ("b", None)]),
        ('a="x"y"', [("a", 'x"y')]),  # only the outer quotes go; there is no escaping
        ('a=x"y z" b', [("a", 'x"y z"'), ("b", None)]),  # a mid-value quote still groups
        ('a=b="c d"', [("a", 'b="c d"')]),
        ("=x", [("=x", None)]),  # an '=' in first position does not split
        ("=x=y", [("=x", "y")]),
        ("a\tb\nc\vd\fe\rf", [(n, None) for n in "abcdef"]),
    ],
)
def test_quoting_follows_next_arg(text: str, expected: list[tuple[str, str | None]]) -> None:
    assert pairs(parse_cmdline(text)) == expected


def test_unbalanced_quote_swallows_the_rest() -> None:
    # An open quote is never closed, so the kernel reads to the end as one value.
    assert pairs(parse_cmdline('quiet a="b c -- d')) == [("quiet", None), ("a", "b c -- d")]
    assert pairs(parse_cmdline('"a b')) == [("a b", None)]


def test_double_dash_starts_init_args() -> None:
    line = parse_cmdline('ro quiet -- single "x=a b" y="c d" --verbose')
    assert pairs(line) == [("ro", None), ("quiet", None)]
    # Rejoined as the kernel's repair_env_string() does, quotes around the value gone.
    assert line.init_args == ("single", "x=a b", "y=c d", "--verbose")
    assert not line.has("single")


def test_only_a_bare_double_dash_separates() -> None:
    line = parse_cmdline("--=1 ---- a -- b")
    assert pairs(line) == [("--", "1"), ("----", None), ("a", None)]
    assert line.init_args == ("b",)
    assert parse_cmdline('x "--" y').init_args == ("y",)  # quotes stripped before the compare


def test_dash_and_underscore_are_equivalent() -> None:
    line = parse_cmdline("nohz-full=2-15 rcu_nocbs=3 intel_idle.max-cstate=0")
    assert line.has("nohz_full")
    assert line.has("nohz-full")
    assert line.has("rcu-nocbs")
    assert line.values("intel-idle.max_cstate") == ["0"]
    assert line.last("nohz_full") == Param("nohz-full", "2-15")  # name kept as written
    assert not line.has("nohz")


def test_last_occurrence_wins_and_all_are_kept() -> None:
    line = parse_cmdline("mitigations=auto quiet mitigations=off nosmt mitigations")
    assert line.values("mitigations") == ["auto", "off", None]
    assert line.last("mitigations") == Param("mitigations", None)
    assert line.last("absent") is None
    assert line.values("absent") == []


def test_bare_flags() -> None:
    line = parse_cmdline("quiet nosmt")
    assert line.has("quiet")
    assert line.last("quiet") == Param("quiet", None)
    assert line.values("nosmt") == [None]


@pytest.mark.parametrize("text", ["", "   ", "\n", "\t \n \r", "\0", "\0quiet"])
def test_empty_input(text: str) -> None:
    line = parse_cmdline(text)
    assert line.params == ()
    assert line.init_args == ()


def test_nul_ends_the_line() -> None:
    line = parse_cmdline("quiet ro\0panic=1")
    assert pairs(line) == [("quiet", None), ("ro", None)]


@pytest.mark.parametrize("text", ['"', '""', '"""', "=", "==", '="', '"="', "--", '-- "', "\x00"])
def test_garbage_does_not_raise(text: str) -> None:
    parse_cmdline(text)


def test_lone_quote_tokens() -> None:
    assert pairs(parse_cmdline('""')) == [("", None)]
    assert pairs(parse_cmdline('"= b')) == [("= b", None)]


@given(st.text())
def test_never_raises(text: str) -> None:
    line = parse_cmdline(text)
    assert line.raw == text


_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,15}", fullmatch=True)
_VALUE = st.text(
    alphabet=st.characters(codec="ascii", exclude_characters='"\0\t\n\v\f\r', min_codepoint=32),
    max_size=20,
)


def _render(name: str, value: str | None) -> str:
    if value is None:
        return name
    return f'{name}="{value}"' if " " in value or not value else f"{name}={value}"


@given(
    st.lists(st.tuples(_NAME, st.none() | _VALUE), max_size=10),
    st.lists(_NAME, max_size=3),
    st.sampled_from([" ", "  ", "\t", " \n "]),
)
def test_round_trip(params: list[tuple[str, str | None]], init: list[str], sep: str) -> None:
    words = [_render(name, value) for name, value in params]
    text = sep.join([*words, "--", *init]) if init else sep.join(words)
    line = parse_cmdline(text)
    assert pairs(line) == params
    assert line.init_args == tuple(init)
    for name, value in params:
        assert line.has(name.replace("_", "-"))
        assert value in line.values(name)
