"""``@record`` behaves as ``@dataclass(frozen=True)``: each case makes one class both ways."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.record import record


def twins(body: dict[str, Any], annotations: dict[str, str]) -> tuple[type, type]:
    """The same class body made by @record and by @dataclass(frozen=True), both named Twin."""
    made: list[type] = []
    for decorate in (record, dataclass(frozen=True)):
        namespace = {"__annotations__": dict(annotations), "__qualname__": "Twin", **body}
        made.append(decorate(type("Twin", (), namespace)))
    return made[0], made[1]


SHAPES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "no fields": ({}, {}),
    "one field": ({}, {"a": "int"}),
    "three fields": ({}, {"a": "int", "b": "str", "c": "tuple[int, ...]"}),
    "defaults": ({"b": "x", "c": field(default_factory=tuple)},
                 {"a": "int", "b": "str", "c": "tuple[int, ...]"}),
    "not compared": ({"b": field(compare=False, default="")}, {"a": "int", "b": "str"}),
    "not hashed": ({"b": field(hash=False, default="")}, {"a": "int", "b": "str"}),
    "hashed though not compared": ({"b": field(compare=False, hash=True, default="")},
                                   {"a": "int", "b": "str"}),
    "not shown": ({"b": field(repr=False, default="")}, {"a": "int", "b": "str"}),
}


def values(count: int) -> list[tuple[Any, ...]]:
    return [(1, "x", (1, 2))[:count], (2, "x", (1, 2))[:count], (1, "y", (1, 2))[:count],
            (1, "x", ())[:count]]


@pytest.mark.parametrize("shape", SHAPES)
def test_equality_hash_and_repr_are_the_dataclasses(shape: str) -> None:
    body, annotations = SHAPES[shape]
    fast, slow = twins(body, annotations)
    count = len(annotations)
    made = [(fast(*v), slow(*v)) for v in values(count)]
    for f1, s1 in made:
        assert repr(f1) == repr(s1)
        assert hash(f1) == hash(s1)
        for f2, s2 in made:
            assert (f1 == f2) == (s1 == s2)
            assert (f1 != f2) == (s1 != s2)


def test_frozen_as_a_dataclass() -> None:
    fast, _ = twins({}, {"a": "int"})
    item = fast(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.a = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        del item.a


def test_dataclass_functions_work() -> None:
    fast, _ = twins({"b": field(default_factory=list)}, {"a": "int", "b": "list[int]"})
    item: Any = fast(1, [2])
    probe: object = item  # is_dataclass would narrow item itself
    assert dataclasses.is_dataclass(probe)
    assert [f.name for f in dataclasses.fields(item)] == ["a", "b"]
    assert dataclasses.asdict(item) == {"a": 1, "b": [2]}
    assert dataclasses.replace(item, a=3) == fast(3, [2])
    assert fast(1).b == [] and fast(1).b is not fast(1).b


def test_other_classes_are_never_equal() -> None:
    one, _ = twins({}, {"a": "int"})
    other, _ = twins({}, {"a": "int"})

    class Sub(one):  # type: ignore[valid-type,misc]
        pass

    assert one(1) != other(1)
    assert one(1) != Sub(1)
    assert one(1) != (1,)
    assert one(1).__eq__(object()) is NotImplemented


def test_unhashable_field_fails_to_hash_as_a_dataclass() -> None:
    fast, slow = twins({}, {"a": "list[int]"})
    for kind in (fast, slow):
        with pytest.raises(TypeError, match="unhashable"):
            hash(kind([1]))


def test_recursive_repr_is_cut_short() -> None:
    fast, slow = twins({}, {"a": "list[Any]"})
    f, s = fast([]), slow([])
    f.a.append(f)
    s.a.append(s)
    assert repr(f) == repr(s) == "Twin(a=[...])"


def test_methods_the_class_writes_are_kept() -> None:
    def own_eq(self: Any, other: object) -> bool:
        return True

    fast, slow = twins({"__repr__": lambda self: "mine", "__eq__": own_eq}, {"a": "int"})
    for kind in (fast, slow):
        assert repr(kind(1)) == "mine"
        assert kind(1) == kind(2)
        # Python sets __hash__ = None beside a written __eq__; the decorator hashes fields.
        assert hash(kind(1)) == hash(kind(1)) != hash(kind(2))
    fast, slow = twins({"__hash__": lambda self: 7}, {"a": "int"})
    assert hash(fast(1)) == hash(slow(1)) == 7
    fast, slow = twins({"__hash__": None}, {"a": "int"})  # unhashable on purpose
    assert fast.__hash__ is slow.__hash__ is None
    assert fast(1) == fast(1)


def test_inherited_fields_take_part() -> None:
    @record
    class Base:
        a: int

    @record
    class Child(Base):
        b: str

    assert Child(1, "x") == Child(1, "x") != Child(2, "x")
    assert repr(Child(1, "x")) == "test_inherited_fields_take_part.<locals>.Child(a=1, b='x')"


@record
class Pickled:
    a: int
    b: tuple[str, ...] = ()


def test_pickles() -> None:
    item = Pickled(1, ("x",))
    assert pickle.loads(pickle.dumps(item)) == item


scalars = st.one_of(st.integers(), st.text(max_size=5), st.none(), st.booleans(), st.floats())


@given(st.lists(st.tuples(scalars, scalars), min_size=2, max_size=2))
def test_any_values_agree(pairs: list[tuple[Any, Any]]) -> None:
    fast, slow = twins({}, {"a": "Any", "b": "Any"})
    (f1, s1), (f2, s2) = ((fast(*p), slow(*p)) for p in pairs)
    assert repr(f1) == repr(s1)
    assert (f1 == f2) == (s1 == s2)
    assert hash(f1) == hash(s1)
