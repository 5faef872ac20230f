"""``@record`` behaves as ``@dataclass(frozen=True)``: each case makes one class both ways.

These test the record builder itself, so they build records as records even when the suite runs
with ``HOSTGUARD_PLAIN_RECORDS`` set (the last tests are of that switch).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.core import record as record_module
from agent.core.record import record


@pytest.fixture(autouse=True)
def built_as_records(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The record builder, whatever the environment chose at import."""
    monkeypatch.setattr(record_module, "PLAIN", False)
    yield


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


INIT_SHAPES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "no fields": ({}, {}),
    "positional": ({}, {"a": "int", "b": "str"}),
    "defaults": ({"b": "x", "c": field(default=(1,)), "d": field(default_factory=list)},
                 {"a": "int", "b": "str", "c": "tuple[int, ...]", "d": "list[int]"}),
    "a field named self": ({}, {"self": "int", "other": "int"}),
    "fields named like the helpers": ({"set": 5, "factory": field(default_factory=list)},
                                      {"x": "int", "set": "int", "factory": "list[int]"}),
    "a class variable": ({"limit": 3}, {"a": "int", "limit": "ClassVar[int]"}),
}


def outcome(make: Any, *args: Any, **kwargs: Any) -> Any:
    """What calling ``make`` gives: the instance's repr, or the error's type and message."""
    try:
        return repr(make(*args, **kwargs))
    except Exception as exc:  # the error is the outcome compared
        return type(exc), str(exc)


@pytest.mark.parametrize("shape", INIT_SHAPES)
def test_init_signature_doc_and_match_args_are_the_dataclasses(shape: str) -> None:
    body, annotations = INIT_SHAPES[shape]
    fast, slow = twins(body, annotations)
    assert str(inspect.signature(fast)) == str(inspect.signature(slow))
    inits = [vars(made)["__init__"] for made in (fast, slow)]
    assert str(inspect.signature(inits[0])) == str(inspect.signature(inits[1]))
    assert inits[0].__qualname__ == inits[1].__qualname__ == "Twin.__init__"
    assert fast.__doc__ == slow.__doc__
    assert getattr(fast, "__match_args__") == getattr(slow, "__match_args__")  # noqa: B009
    count = sum("ClassVar" not in a for a in annotations.values())
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((), {}), ((1,), {}), ((1, "y"), {}), ((1, "y", (2,), [3]), {}),
        ((1, "y", (2,), [3], 4), {}), ((), {"a": 1}), ((1,), {"a": 1}), ((), {"zz": 1}),
        ((), {"self": 1, "other": 2}), ((1, 2), {}),
    ]
    for args, kwargs in calls:
        assert outcome(fast, *args, **kwargs) == outcome(slow, *args, **kwargs), (args, kwargs)
    if count:
        assert outcome(fast) == outcome(slow)  # missing arguments, the same message


def test_default_factories_make_a_new_value_each_time() -> None:
    fast, _ = twins({"a": field(default_factory=list)}, {"a": "list[int]"})
    first, second = fast(), fast()
    assert first.a == [] and first.a is not second.a
    given = [1]
    assert fast(given).a is given


def test_frozen_on_a_record_and_on_a_plain_subclass_as_a_dataclass() -> None:
    fast, slow = twins({}, {"a": "int"})

    class FastSub(fast):  # type: ignore[valid-type,misc]
        pass

    class SlowSub(slow):  # type: ignore[valid-type,misc]
        pass

    for made in (fast(1), slow(1), FastSub(1), SlowSub(1)):
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'a'"):
            made.a = 2
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'a'"):
            del made.a
    for made in (fast(1), slow(1)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.b = 2  # any name on the class itself
    for made in (FastSub(1), SlowSub(1)):
        made.b = 2  # a plain subclass may add its own attributes
        del made.b


def test_what_a_record_cannot_have_is_refused() -> None:
    def post_init(self: Any) -> None:
        pass

    for body, fields in (
            ({"__post_init__": post_init}, {"a": "int"}),
            ({"a": field(init=False, default=1)}, {"a": "int"}),
            ({"a": field(kw_only=True)}, {"a": "int"}),
            ({}, {"a": "int", "b": "InitVar[int]"})):
        with pytest.raises(TypeError, match="use @dataclass"):
            record(type("Twin", (), {"__annotations__": fields, **body}))
    with pytest.raises(TypeError, match="use @dataclass"):
        record(type("Twin", (), {"__annotations__": {"a": "int"},
                                 "__setattr__": object.__setattr__}))
    base: type = dataclass(type("Base", (), {"__annotations__": {"a": "int"}}))
    with pytest.raises(TypeError, match="use @dataclass"):
        record(type("Twin", (base,), {"__annotations__": {"b": "int"}}))
    for body in ({"a": 1}, {"a": 1, "__init__": lambda self: None}):
        with pytest.raises(TypeError, match="non-default argument 'b' follows default"):
            record(type("Twin", (), {"__annotations__": {"a": "int", "b": "int"}, **body}))


def test_the_init_belongs_to_the_class_s_module() -> None:
    fast, slow = twins({}, {"a": "int"})
    assert vars(fast)["__init__"].__module__ == vars(slow)["__init__"].__module__


def test_an_own_init_is_kept() -> None:
    def own_init(self: Any, value: int) -> None:
        object.__setattr__(self, "a", value * 2)

    fast, slow = twins({"__init__": own_init}, {"a": "int"})
    assert repr(fast(2)) == repr(slow(2)) == "Twin(a=4)"


SWITCH_PROBE = """
import dataclasses, sys
from agent.core.record import PLAIN, record

@record
class Point:
    a: int

def post_init(self):
    pass

Refused = type("Refused", (), {"__annotations__": {"a": "int"}, "__post_init__": post_init})
try:
    record(Refused)
    refused = False
except TypeError:
    refused = True
print(PLAIN, Point.__dataclass_params__.frozen, refused, Point(1) == Point(1), hash(Point(1)) ==
      hash(Point(1)))
"""


@pytest.mark.parametrize(("value", "expected"), [
    (None, "False False True True True"),  # records: nothing generated, what they lack refused
    ("0", "False False True True True"),
    ("1", "True True False True True"),  # a stdlib frozen dataclass, which refuses nothing
])
def test_the_plain_records_switch(value: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HOSTGUARD_PLAIN_RECORDS"}
    if value is not None:
        env["HOSTGUARD_PLAIN_RECORDS"] = value
    done = subprocess.run([sys.executable, "-c", SWITCH_PROBE], capture_output=True, text=True,
                          env=env, timeout=60, check=True)
    assert done.stdout.split() == expected.split()
