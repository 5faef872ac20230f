"""What ``@record`` saves, against ``@dataclass(frozen=True)`` measured in the same run.

Run from the project root::

    python benchmarks/record_bench.py [--runs 15] [--instances 100000]

Imports every module of ``agent`` and collects the shape (field names, annotations, defaults) of
each class made by ``@record``, then times, each the median of ``--runs``:

* defining all those classes again from their shapes, once with each decorator (and, when msgspec
  is importable, as ``msgspec.Struct`` subclasses with ``frozen=True``: it is not a dependency,
  the line is there to weigh it);
* for a five-field class of each kind: making ``--instances`` instances, hashing them, comparing
  each with an equal one.

Prints each time and its ratio to ``@dataclass(frozen=True)``'s. Nothing is asserted about time.
Needs the records built as records: with ``HOSTGUARD_PLAIN_RECORDS`` set it has nothing to weigh.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib
import pkgutil
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from common import installed  # noqa: E402 - beside this script

import agent  # noqa: E402 - after the path set-up above
from agent.core import record as record_module  # noqa: E402

Shape = tuple[str, dict[str, Any], list[tuple[str, Any, Any]]]
"""A class's name, its own non-field namespace and its fields (name, annotation, default or a
``dataclasses.Field`` for a default factory, ``MISSING`` for none)."""


def record_shapes() -> list[Shape]:
    """Every ``@record`` class of the package, as fields to define it again from."""
    for info in pkgutil.walk_packages(agent.__path__, "agent."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    shapes: list[Shape] = []
    for name, module in sorted(sys.modules.items()):
        if not name.startswith("agent.") or module is None:
            continue
        for value in vars(module).values():
            if (isinstance(value, type) and value.__module__ == name
                    and "_record_shown" in vars(value)):
                fields = []
                for f in dataclasses.fields(value):
                    default: Any = f.default
                    if f.default_factory is not dataclasses.MISSING:
                        default = dataclasses.field(default_factory=f.default_factory)
                    fields.append((f.name, f.type, default))
                shapes.append((value.__qualname__, {"__doc__": value.__doc__}, fields))
    return shapes


def namespace(shape: Shape) -> dict[str, Any]:
    """A fresh class body for ``shape`` (a ``Field`` is used once per class)."""
    _, extra, fields = shape
    body: dict[str, Any] = {**extra, "__annotations__": {n: t for n, t, _ in fields}}
    for name, _, default in fields:
        if isinstance(default, dataclasses.Field):
            body[name] = dataclasses.field(default_factory=default.default_factory)
        elif default is not dataclasses.MISSING:
            body[name] = default
    return body


def define_with(decorate: Callable[[type], type]) -> Callable[[list[Shape]], list[type]]:
    """A function defining every shape as a plain class given to ``decorate``."""
    def define(shapes: list[Shape]) -> list[type]:
        return [decorate(type(shape[0], (), namespace(shape))) for shape in shapes]
    return define


def define_structs(shapes: list[Shape]) -> list[type]:
    """Every shape as a frozen ``msgspec.Struct``."""
    msgspec = installed("msgspec")
    made = []
    for shape in shapes:
        body = namespace(shape)
        for key, value in list(body.items()):
            if isinstance(value, dataclasses.Field):
                factory: Any = value.default_factory
                body[key] = msgspec.field(default_factory=factory)

        def fill(ns: dict[str, Any], body: dict[str, Any] = body) -> None:
            ns.update(body)

        made.append(types.new_class(shape[0], (msgspec.Struct,), {"frozen": True}, fill))
    return made


def median_ms(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of ``fn`` in milliseconds, the collector paused (as the audit runs)."""
    times = []
    for _ in range(runs):
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        gc.enable()
    return statistics.median(times) * 1000


FIVE: Shape = ("Five", {}, [("a", "int", dataclasses.MISSING), ("b", "str", dataclasses.MISSING),
                            ("c", "int", 0), ("d", "str", ""), ("e", "tuple[int, ...]", ())])


def use(kind: type, count: int, runs: int) -> tuple[float, float, float]:
    """Median ms to make ``count`` instances of ``kind``, to hash them, to compare them."""
    def make() -> list[Any]:
        return [kind(i, "x", i, "y", (i,)) for i in range(count)]

    one, two = make(), make()
    return (median_ms(make, runs), median_ms(lambda: [hash(x) for x in one], runs),
            median_ms(lambda: [x == y for x, y in zip(one, two, strict=True)], runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--instances", type=int, default=100_000)
    args = parser.parse_args()
    if min(args.runs, args.instances) < 1:
        parser.error("--runs and --instances must be at least 1")
    if record_module.PLAIN:
        print("record_bench: HOSTGUARD_PLAIN_RECORDS is set, records are dataclasses: nothing "
              "to weigh", file=sys.stderr)
        return 2
    shapes = record_shapes()
    kinds: dict[str, Callable[[list[Shape]], list[type]]] = {
        "dataclass(frozen=True)": define_with(dataclasses.dataclass(frozen=True)),
        "@record": define_with(record_module.record),
    }
    if installed("msgspec") is None:
        print("msgspec is not importable here: its line is left out")
    else:
        kinds["msgspec.Struct, frozen"] = define_structs
    print(f"Python {sys.version.split()[0]}: {len(shapes)} @record classes in agent/, "
          f"{sum(len(s[2]) for s in shapes)} fields; make, hash, eq: {args.instances} instances "
          "of a five-field class; ms (ratio to the first line)")
    print(f"{'':24}{'define all':>18}{'make':>18}{'hash':>18}{'eq':>18}")
    reference: tuple[float, ...] = ()
    for name, define in kinds.items():
        define_ms = median_ms(lambda define=define: define(shapes), args.runs)  # type: ignore[misc]
        figures = (define_ms, *use(define([FIVE])[0], args.instances, max(3, args.runs // 3)))
        reference = reference or figures
        cells = "".join(f"{ms:9.2f} ({ms / ref:4.2f}x)"
                        for ms, ref in zip(figures, reference, strict=True))
        print(f"{name:24}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
