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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_ANNOTATIONS = frozenset({
    "$schema", "$id", "$defs", "$comment", "title", "description", "examples", "default",
    "deprecated", "readOnly", "writeOnly", "format",
})
"""Keywords that never make an instance invalid (``format`` without a format checker)."""


class _Unsure(Exception):
    """Something this module does not judge: let jsonschema decide."""


def accepts(schema: Mapping[str, Any] | bool, instance: Any) -> bool:
    """True when ``instance`` is certainly valid under ``schema``; False when it is not, or
    when this module cannot tell."""
    try:
        return _valid(schema, instance, schema if isinstance(schema, Mapping) else {})
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


def _valid(schema: Mapping[str, Any] | bool, x: Any, root: Mapping[str, Any]) -> bool:
    if schema is True:
        return True
    if schema is False:
        return False
    # type() first: isinstance against an ABC costs more than the rest of a small schema.
    if (type(schema) is not dict and not isinstance(schema, Mapping)) or (
            "$id" in schema and schema is not root):
        raise _Unsure  # a nested $id would move the base of $ref
    for key, value in schema.items():
        if key in _ANNOTATIONS:
            continue
        check = _KEYWORDS.get(key)
        if check is None:
            if key in ("then", "else") and "if" in schema:
                continue  # judged with "if"
            raise _Unsure
        if not check(value, x, schema, root):
            return False
    return True


def _type(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    if type(value) is str:
        return _is_type(x, value)
    return any(_is_type(x, name) for name in value)


def _enum(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return any(_same(each, x) for each in value)


def _const(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return _same(value, x)


def _properties(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    if type(x) is not dict:
        return True
    return all(_valid(sub, x[key], root) for key, sub in value.items() if key in x)


def _additional(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    if type(x) is not dict:
        return True
    if "patternProperties" in schema:
        raise _Unsure
    known = schema.get("properties", {})
    return all(_valid(value, item, root) for key, item in x.items() if key not in known)


def _required(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return type(x) is not dict or all(key in x for key in value)


def _min_properties(value: Any, x: Any, schema: Mapping[str, Any],
                    root: Mapping[str, Any]) -> bool:
    return type(x) is not dict or len(x) >= value


def _property_names(value: Any, x: Any, schema: Mapping[str, Any],
                    root: Mapping[str, Any]) -> bool:
    return type(x) is not dict or all(_valid(value, key, root) for key in x)


def _items(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    if type(x) is not list:
        return True
    if "prefixItems" in schema:
        raise _Unsure
    return all(_valid(value, item, root) for item in x)


def _min_items(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return type(x) is not list or len(x) >= value


def _unique(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    if not value or type(x) is not list:
        return True
    if not all(type(item) is str for item in x):
        raise _Unsure
    return len(set(x)) == len(x)


def _min_length(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return type(x) is not str or len(x) >= value


def _pattern(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return type(x) is not str or re.search(value, x) is not None


def _number(x: Any) -> bool:
    return type(x) is int or type(x) is float


def _minimum(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return not _number(x) or x >= value


def _maximum(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return not _number(x) or x <= value


def _any_of(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return any(_valid(sub, x, root) for sub in value)


def _all_of(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return all(_valid(sub, x, root) for sub in value)


def _one_of(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return sum(_valid(sub, x, root) for sub in value) == 1  # each verdict certain, or unsure


def _if(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return _valid(schema.get("then" if _valid(value, x, root) else "else", True), x, root)


def _ref(value: Any, x: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    if not isinstance(value, str) or not value.startswith("#/"):
        raise _Unsure
    target: Any = root
    for escaped in value[2:].split("/"):
        part = escaped.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, Mapping) or part not in target:
            raise _Unsure
        target = target[part]
    return _valid(target, x, root)


_KEYWORDS: dict[str, Callable[[Any, Any, Mapping[str, Any], Mapping[str, Any]], bool]] = {
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
