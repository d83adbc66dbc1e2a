"""Checking a frozen dataclass's field values against their annotations, for configs built
from text (the CLI's KEY=VALUE overrides) or by hand: a value of the wrong type is an error
that names the field, what it takes and an example; an int given for a float is converted."""

import dataclasses
import numbers
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any


def _describe(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is typing.Literal:
        return " or ".join(repr(v) for v in typing.get_args(hint))
    return getattr(typing.get_origin(hint) or hint, "__name__", str(hint))


_NO_MATCH = object()


def conform(value: Any, hint: Any) -> Any:
    """`value` as a value of type `hint` (an int given for a float becomes one, a list for a
    tuple becomes one), or `_NO_MATCH`."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            out = conform(value, option)
            if out is not _NO_MATCH:
                return out
        return _NO_MATCH
    if origin is typing.Literal:
        return value if value in typing.get_args(hint) else _NO_MATCH
    if hint is type(None):
        return value if value is None else _NO_MATCH
    if hint is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        return float(value) if ok else _NO_MATCH
    if hint is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return int(value) if ok else _NO_MATCH
    container = origin or hint
    if container in (tuple, Sequence) and isinstance(value, list | tuple):
        return tuple(value)
    if container in (dict, Mapping) and isinstance(value, Mapping):
        return value
    if isinstance(container, type):
        return value if isinstance(value, container) else _NO_MATCH
    return value  # a typing construct not checked here


def check_types(config: Any) -> None:
    """Convert or refuse each field of the frozen dataclass `config` by its annotation (in
    place, as `__post_init__` may); a refusal is a TypeError naming the field."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        out = conform(value, hints[f.name])
        if out is _NO_MATCH:
            example = _example(f)
            raise TypeError(
                f"{type(config).__name__}.{f.name} takes {_describe(hints[f.name])}, got "
                f"{value!r} ({type(value).__name__})"
                + (f"; e.g. --env-config {f.name}={example!r}" if example is not None else "")
                + ".")
        if out is not value:
            object.__setattr__(config, f.name, out)


def _example(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None
