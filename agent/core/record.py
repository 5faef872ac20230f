"""``@record``: a frozen dataclass that is quicker to define.

Which value type to use where (the rule, with the reasons, is in ``docs/values.md``):

* ``@record``: an immutable value of the model (policy, snapshot, results, seccomp profiles),
  compared and hashed by its fields. The default for a new value type.
* ``@dataclass(frozen=True, ...)``: an immutable value that needs what a record refuses
  (``order=True``, ``slots=True``, ``__post_init__``, ``InitVar``, keyword-only or
  ``init=False`` fields).
* ``@dataclass`` (mutable): state built up step by step and then read (loaders, builders).
* ``NamedTuple``: rows made in bulk on a hot path or meant to be unpacked, and values a module
  must define before ``dataclasses`` is imported (the fd-walk helpers).
* A plain class: an object with behaviour and hidden state (caches, walkers, handles).

Why it exists: a one-shot audit defines dozens of frozen dataclasses before it reads anything,
and ``dataclass(frozen=True)`` compiles six methods for each from generated source
(``benchmarks/record_bench.py`` weighs the two). Here ``dataclasses`` collects the fields and
generates nothing; each class gets one compiled ``__init__`` (storing each argument with
``object.__setattr__``, as a frozen dataclass's does), and every class shares one frozen
``__setattr__``/``__delattr__`` and one ``__eq__``, ``__hash__`` and ``__repr__`` that read the
fields through getters built once per class.

The behaviour is a frozen dataclass's as of Python 3.11 and 3.12, field options (``default``,
``default_factory``, ``compare``, ``hash``, ``repr``) included: fields compare as one tuple (3.13
compares them one by one, which differs only for a value not equal to itself, such as NaN).
``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` work as on any dataclass.
What a record cannot have (``__post_init__``, ``InitVar``, ``field(init=False)``, keyword-only
fields, its own ``__setattr__``/``__delattr__``, a stdlib dataclass as a base) is refused with a
``TypeError``: use ``@dataclass(frozen=True)`` for those. ``__dataclass_params__`` says
``frozen=False``, ``eq=False`` and ``repr=False`` (nothing was generated), so a record's
subclasses are records or plain classes (a stdlib dataclass would take it for a mutable one),
and pytest shows two records' reprs, not a diff of their fields. The ``__init__`` is compiled
apart from the module: ``typing.get_type_hints`` resolves the class's annotations, not its.

The switch: with ``HOSTGUARD_PLAIN_RECORDS=1`` in the environment when this module is first
imported, ``@record`` is ``@dataclass(frozen=True)`` itself (nothing refused, nothing of the
above). CI runs the whole suite once that way (``make test-plain-records``), so the package never
depends on what only a record does, and a suspected record bug can be ruled out by one run.
"""

from __future__ import annotations

import dataclasses
import inspect
import operator
import os
import reprlib
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

PLAIN = os.environ.get("HOSTGUARD_PLAIN_RECORDS", "") not in ("", "0")
"""Whether every record is built as a plain ``@dataclass(frozen=True)`` (read once, at import)."""

_Getter = Callable[[Any], tuple[Any, ...]]


class _Factory:
    """An argument left to its field's default factory (shown as dataclasses shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def _getter(names: list[str]) -> _Getter:
    """A function from an instance to the tuple of these attributes."""
    if len(names) == 1:  # attrgetter of one name returns the bare value
        get = operator.attrgetter(names[0])
        return lambda obj: (get(obj),)
    if not names:
        return lambda obj: ()
    return operator.attrgetter(*names)


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        key = self._record_compared
        return key(self) == key(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(self._record_hashed(self))


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._record_shown)
    return f"{self.__class__.__qualname__}({shown})"


def _frozen(self: Any, name: str) -> bool:
    """Whether ``name`` cannot be set or deleted on ``self``: any name on a record itself, a
    field's name on an instance of a plain subclass (as a frozen dataclass decides; other
    names are then set as ``object`` sets them)."""
    cls = type(self)
    return "_record_shown" in cls.__dict__ or name in cls._record_fields


def _setattr(self: Any, name: str, value: Any) -> None:
    if _frozen(self, name):
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _delattr(self: Any, name: str) -> None:
    if _frozen(self, name):
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
    object.__delattr__(self, name)


def _init(cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> Callable[..., None]:
    """The ``__init__`` a frozen dataclass would have, compiled once."""
    names = {f.name for f in fields}
    me = "__dataclass_self__" if "self" in names else "self"  # the name dataclasses uses
    scope: dict[str, Any] = {"__name__": cls.__module__, "__record_set__": object.__setattr__,
                             "__record_factory__": _FACTORY}
    params: list[str] = []
    body: list[str] = []
    for f in fields:
        name = f.name
        value = name
        default = f"__record_dflt_{name}__"  # apart from the helpers' names, whatever the field's
        if f.default_factory is not dataclasses.MISSING:
            scope[default] = f.default_factory
            params.append(f"{name}=__record_factory__")
            value = f"{default}() if {name} is __record_factory__ else {name}"
        elif f.default is not dataclasses.MISSING:
            scope[default] = f.default
            params.append(f"{name}={default}")
        else:
            params.append(name)
        body.append(f"__record_set__({me}, {name!r}, {value})")
    source = f"def __init__({', '.join([me, *params])}):\n " + ("\n ".join(body) or "pass")
    exec(source, scope)  # noqa: S102 - source made above from field names only
    init: Callable[..., None] = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = {**{f.name: f.type for f in fields}, "return": None}
    return init


_INITVAR = getattr(dataclasses, "_FIELD_INITVAR", None)


def _refuse(cls: type, own: dict[str, Any], fields: tuple[dataclasses.Field[Any], ...]) -> None:
    """A ``TypeError`` for what a record does not do (a frozen dataclass does), and for fields
    in an order no ``__init__`` could take."""
    pseudo = cls.__dataclass_fields__.values()  # type: ignore[attr-defined]
    why = ""
    if hasattr(cls, "__post_init__"):
        why = "__post_init__"
    elif "__setattr__" in own or "__delattr__" in own:
        why = "its own __setattr__ or __delattr__"
    elif any(not f.init or f.kw_only is True for f in fields):
        why = "a field(init=False) or a keyword-only field"
    elif any(getattr(f, "_field_type", None) is _INITVAR is not None or "InitVar" in str(f.type)
             for f in pseudo):
        why = "an InitVar"
    elif any("__dataclass_fields__" in vars(base) and "_record_shown" not in vars(base)
             for base in cls.__mro__[1:]):
        why = "a stdlib dataclass as a base"
    if why:
        raise TypeError(f"{cls.__qualname__}: a @record cannot have {why}; use "
                        "@dataclass(frozen=True)")
    defaulted = False
    for f in fields:
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            defaulted = True
        elif defaulted:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(cls: type[T]) -> type[T]:
    """``@dataclass(frozen=True)``, quicker to define (see the module)."""
    if PLAIN:
        return dataclasses.dataclass(frozen=True)(cls)
    own = dict(cls.__dict__)  # what the class body wrote, before anything is set
    if not own.get("__doc__"):
        cls.__doc__ = "(worded below)"  # dataclasses would word it from object's signature
    made: Any = dataclasses.dataclass(init=False, eq=False, repr=False)(cls)  # cls itself
    fields = dataclasses.fields(made)
    _refuse(made, own, fields)
    # Methods the class writes itself are kept, as dataclasses keeps them (the __hash__ = None
    # that Python gives a class body with __eq__ is not one of them).
    if "__init__" not in own:
        made.__init__ = _init(made, fields)
    if not own.get("__doc__"):  # as dataclasses words it, from the signature
        try:
            signature = str(inspect.signature(made)).replace(" -> None", "")
        except (TypeError, ValueError):
            signature = ""
        made.__doc__ = made.__name__ + signature
    made.__setattr__ = _setattr
    made.__delattr__ = _delattr
    made._record_fields = frozenset(f.name for f in fields)
    # staticmethod: a getter made of a lambda would otherwise bind to the instance.
    made._record_compared = staticmethod(_getter([f.name for f in fields if f.compare]))
    # As in dataclasses: hash=None follows compare.
    made._record_hashed = staticmethod(_getter([f.name for f in fields
                                                if (f.compare if f.hash is None else f.hash)]))
    made._record_shown = tuple(f.name for f in fields if f.repr)
    if "__repr__" not in own:
        made.__repr__ = _repr
    if "__eq__" not in own:
        made.__eq__ = _eq
    if "__hash__" not in own or (own["__hash__"] is None and "__eq__" in own):
        made.__hash__ = _hash
    return cls
