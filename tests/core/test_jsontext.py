"""agent.core.jsontext: exactly json.dumps(indent=2, ensure_ascii=True), whatever it is given."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core import jsontext


class Colour(enum.StrEnum):  # as agent.result.Status
    RED = "red\u202e"


class Level(enum.IntEnum):
    HIGH = 3


SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.text() | st.sampled_from([Colour.RED, Level.HIGH, "\udcff", "\x00\x1f\x7f"]))
VALUES = st.recursive(
    SCALARS,
    lambda inner: (st.lists(inner) | st.lists(inner).map(tuple)
                   | st.dictionaries(st.text(), inner)),
    max_leaves=40)


@settings(max_examples=400)
@given(VALUES)
def test_the_same_text_as_json(value: Any) -> None:
    assert jsontext.dumps(value) == json.dumps(value, indent=2, ensure_ascii=True)


@pytest.mark.parametrize("value", [
    {1: "int key", None: "none key"},   # json converts such keys
    {"when": object()},                 # json refuses it
])
def test_what_it_does_not_take_json_decides(value: Any) -> None:
    try:
        expected = json.dumps(value, indent=2, ensure_ascii=True)
    except TypeError as exc:
        with pytest.raises(TypeError, match=str(exc)[:20]):
            jsontext.dumps(value)
    else:
        assert jsontext.dumps(value) == expected


def test_a_cycle_is_json_s_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        jsontext.dumps(loop)
    shared = ["x"]
    assert jsontext.dumps([shared, shared]) == json.dumps([shared, shared], indent=2)


def test_deep_nesting_is_json_s_to_decide() -> None:
    for depth in (250, 5000):
        value: Any = []
        for _ in range(depth):
            value = [value]
        try:
            expected: str | type[BaseException] = json.dumps(value, indent=2, ensure_ascii=True)
        except RecursionError:
            expected = RecursionError
        if expected is RecursionError:
            with pytest.raises(RecursionError):
                jsontext.dumps(value)
        else:
            assert jsontext.dumps(value) == expected
