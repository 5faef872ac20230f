"""A quick yes to "is this document valid under that JSON Schema?", before asking jsonschema.

:func:`accepts` answers True only when the instance is valid as ``jsonschema``'s
``Draft202012Validator`` (no format checker: ``format`` is an annotation) judges it; on any
doubt (an invalid value, a keyword or value type it does not handle, a ``$ref`` outside the
document) it answers False, and the caller asks jsonschema, which also words the errors.
So a valid policy is accepted without importing jsonschema (whose import is most of what a
one-shot ``hostguard audit`` would spend validating), a fleet of result files is checked without
jsonschema's per-keyword machinery, and what is accepted or refused, with which message, is
exactly what jsonschema says. It is the package's one fast path (``benchmarks/validate_bench.py``
weighs it against jsonschema); ``tests/policy/test_quickcheck.py`` holds the two to the same
verdicts on the real schemas.

Hand-written rather than a compiled validator (fastjsonschema) because such a validator is built
from the schema in each process, which costs a one-shot command more than jsonschema itself, and
knows draft-07 only, while the schemas are 2020-12.

Keywords handled, with 2020-12 semantics: ``type``, ``enum``, ``const``, ``properties``,
``additionalProperties``, ``required``, ``minProperties``, ``propertyNames``, ``items``,
``minItems``, ``uniqueItems``, ``minLength``, ``pattern``, ``minimum``, ``maximum``,
``anyOf``, ``allOf``, ``oneOf``, ``if``/``then``/``else``, local ``$ref``; annotations are
ignored. Inside, False means certainly invalid: anything less certain raises ``_Unsure``, which is
what lets ``oneOf`` and ``else`` be judged.

A schema is turned once into nested closures, one per keyword, each holding its compiled
subschemas, its resolved ``$ref`` and its compiled pattern; what a keyword would refuse to judge
still raises ``_Unsure`` when (and only when) an instance reaches it, in the schema's keyword
order, so the verdicts are those of walking the schema. Read the schema each time instead and a
fleet of result files spends most of its loading time looking keywords up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

_ANNOTATIONS = frozenset({
    "$schema", "$id", "$defs", "$comment", "title", "description", "examples", "default",
    "deprecated", "readOnly", "writeOnly", "format",
})
"""Keywords that never make an instance invalid (``format`` without a format checker)."""


class _Unsure(Exception):
    """Something this module does not judge: let jsonschema decide."""


_Check = Callable[[Any], bool]
_CACHE: dict[int, tuple[Mapping[str, Any] | bool, _Check]] = {}
_CACHE_LIMIT = 64
"""Compiled schemas by identity (each kept alive with its closure, so its id stays its own)."""


def accepts(schema: Mapping[str, Any] | bool, instance: Any) -> bool:
    """True when ``instance`` is certainly valid under ``schema``; False when it is not, or
    when this module cannot tell. ``schema`` is compiled on first use and must not change."""
    found = _CACHE.get(id(schema))
    if found is None or found[0] is not schema:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        found = (schema, _Compiler(schema).node(schema))
        _CACHE[id(schema)] = found
    try:
        return found[1](instance)
    except (_Unsure, RecursionError):
        return False


def _is_type(instance: Any, name: str) -> bool:
    kind = type(instance)
    if name == "string":
        return kind is str
    if name == "object":
        return kind is dict
    if name == "array":
        return kind is list
    if name == "integer":
        if kind is float:
            raise _Unsure  # 1.0 is an integer to jsonschema; not worth judging here
        return kind is int
    if name == "number":
        return kind is int or kind is float
    if name == "boolean":
        return kind is bool
    if name == "null":
        return instance is None
    raise _Unsure


def _same(a: Any, b: Any) -> bool:
    """Equality as jsonschema's ``equal`` sees it, for strings, integers, booleans and null;
    unsure for anything else."""
    kind = type(a)
    if kind is type(b) and (kind is str or kind is int or kind is bool or a is None):
        return bool(a == b)
    if isinstance(a, str) != isinstance(b, str):
        return False  # jsonschema compares with ==: a string equals no other type
    raise _Unsure


def _unsure(x: Any) -> bool:
    raise _Unsure


def _always(x: Any) -> bool:
    return True


def _never(x: Any) -> bool:
    return False


def _all(checks: tuple[_Check, ...], x: Any) -> bool:
    for check in checks:  # noqa: SIM110 - no generator per call: the hot path
        if not check(x):
            return False
    return True


_SIMPLE_TYPES: dict[str, _Check] = {
    "string": lambda x: type(x) is str,
    "object": lambda x: type(x) is dict,
    "array": lambda x: type(x) is list,
    "boolean": lambda x: type(x) is bool,
    "null": lambda x: x is None,
    "number": lambda x: type(x) is int or type(x) is float,
}


class _Compiler:
    """Closures for one root schema; ``$ref`` targets compiled once, on first reference."""

    def __init__(self, root: Mapping[str, Any] | bool) -> None:
        self.root: Mapping[str, Any] = root if isinstance(root, Mapping) else {}
        self.refs: dict[str, list[_Check]] = {}

    def node(self, schema: Any) -> _Check:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if (type(schema) is not dict and not isinstance(schema, Mapping)) or (
                "$id" in schema and schema is not self.root):
            return _unsure  # a nested $id would move the base of $ref
        checks: list[_Check] = []
        for key, value in schema.items():
            if key in _ANNOTATIONS:
                continue
            make = _KEYWORDS.get(key)
            if make is None:
                if key in ("then", "else") and "if" in schema:
                    continue  # judged with "if"
                checks.append(_unsure)
                break  # what follows is never reached
            checks.append(make(self, value, schema))
        if not checks:
            return _always
        if len(checks) == 1:
            return checks[0]
        return partial(_all, tuple(checks))

    def ref(self, value: Any) -> _Check:
        if not isinstance(value, str) or not value.startswith("#/"):
            return _unsure
        cell = self.refs.get(value)
        if cell is None:
            cell = self.refs[value] = []
            target: Any = self.root
            for escaped in value[2:].split("/"):
                part = escaped.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, Mapping) or part not in target:
                    cell.append(_unsure)
                    break
                target = target[part]
            else:
                cell.append(self.node(target))
        if cell:
            return cell[0]
        return lambda x: cell[0](x)  # noqa: PLW0108 - a reference to itself, compiled later


_Make = Callable[[_Compiler, Any, Mapping[str, Any]], _Check]


def _type(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    if type(value) is str:
        simple = _SIMPLE_TYPES.get(value)
        return simple if simple is not None else partial(_is_type, name=value)
    names = tuple(value)
    return lambda x: any(_is_type(x, name) for name in names)


def _enum(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    values = tuple(value)
    if values and all(type(v) is str for v in values):
        strings = frozenset(values)

        def among(x: Any) -> bool:
            if type(x) is str:
                return x in strings
            return any(_same(each, x) for each in values)
        return among
    return lambda x: any(_same(each, x) for each in values)


def _const(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    return partial(_same, value)


def _properties(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    compiled = ((key, c.node(sub)) for key, sub in value.items())
    subs = tuple((key, sub) for key, sub in compiled if sub is not _always)  # nothing to judge

    def check(x: Any) -> bool:
        if type(x) is not dict:
            return True
        for key, sub in subs:  # noqa: SIM110 - no generator per call: the hot path
            if key in x and not sub(x[key]):
                return False
        return True
    return check


def _additional(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    if "patternProperties" in schema:
        return lambda x: type(x) is not dict or _unsure(x)
    known = frozenset(schema.get("properties", {}))
    if value is False:
        return lambda x: type(x) is not dict or known.issuperset(x)
    sub = c.node(value)

    def check(x: Any) -> bool:
        if type(x) is not dict:
            return True
        for key, item in x.items():  # noqa: SIM110 - no generator per call: the hot path
            if key not in known and not sub(item):
                return False
        return True
    return check


def _required(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    keys = frozenset(value)  # a subset test on the keys view: no Python loop per key
    return lambda x: type(x) is not dict or keys <= x.keys()


def _min_properties(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    return lambda x: type(x) is not dict or len(x) >= value


def _property_names(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    sub = c.node(value)
    return lambda x: type(x) is not dict or all(sub(key) for key in x)


def _items(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    if "prefixItems" in schema:
        return lambda x: type(x) is not list or _unsure(x)
    sub = c.node(value)

    def check(x: Any) -> bool:
        if type(x) is not list:
            return True
        for item in x:  # noqa: SIM110 - no generator per call: the hot path
            if not sub(item):
                return False
        return True
    return check


def _min_items(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    return lambda x: type(x) is not list or len(x) >= value


def _unique(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    if not value:
        return _always

    def check(x: Any) -> bool:
        if type(x) is not list:
            return True
        if not all(type(item) is str for item in x):
            raise _Unsure
        return len(set(x)) == len(x)
    return check


def _min_length(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    return lambda x: type(x) is not str or len(x) >= value


def _pattern(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    search = re.compile(value).search
    return lambda x: type(x) is not str or search(x) is not None


def _minimum(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    return lambda x: (type(x) is not int and type(x) is not float) or x >= value


def _maximum(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    return lambda x: (type(x) is not int and type(x) is not float) or x <= value


def _any_of(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    subs = tuple(c.node(sub) for sub in value)
    return lambda x: any(sub(x) for sub in subs)


def _all_of(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    return partial(_all, tuple(c.node(sub) for sub in value))


def _one_of(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    subs = tuple(c.node(sub) for sub in value)

    def check(x: Any) -> bool:
        matched = 0
        for sub in subs:  # no generator per call: the hot path; each verdict certain, or unsure
            if sub(x):
                matched += 1
        return matched == 1
    return check


def _if(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    test, then, other = (c.node(value), c.node(schema.get("then", True)),
                         c.node(schema.get("else", True)))
    return lambda x: then(x) if test(x) else other(x)


def _ref(c: _Compiler, value: Any, schema: Mapping[str, Any]) -> _Check:
    return c.ref(value)


_KEYWORDS: dict[str, _Make] = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "minProperties": _min_properties,
    "propertyNames": _property_names,
    "items": _items,
    "minItems": _min_items,
    "uniqueItems": _unique,
    "minLength": _min_length,
    "pattern": _pattern,
    "minimum": _minimum,
    "maximum": _maximum,
    "anyOf": _any_of,
    "allOf": _all_of,
    "oneOf": _one_of,
    "if": _if,
    "$ref": _ref,
}
