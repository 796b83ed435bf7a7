"""Typed JSON records: frozen dataclasses that read and write one JSON object each.

The manifests the toolkit writes (the build's, the package's) are :class:`Record` trees,
so every field is named in code once and a misspelt one fails the type checker, while
their JSON stays as it always was:

- a field is its JSON key (:func:`key` names one that is no Python name, e.g. ``bytes``);
- a field made with :func:`optional` is left out of the object when it is None (a key
  that only some records have), any other None is written as null;
- a :func:`flattened` field holds a nested record whose keys sit in the parent's object
  (e.g. what an ONNX build adds to the classifier record); it is read back when all of its
  required keys are there;
- keys a record does not know are kept in ``extra`` and written back as they were read,
  so a manifest from another version survives a round trip unchanged;
- a key missing on reading takes the field's default, and a missing required key is a
  :class:`RecordError`: older manifests load as long as what they lack has a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from typing import Any, TypeVar, Union

_KEY = "tritonship.key"
_OMIT_NONE = "tritonship.omit_none"
_FLATTEN = "tritonship.flatten"

R = TypeVar("R", bound="Record")


class RecordError(ValueError):
    """A JSON object is not the record it should be (a required key is missing, say)."""


def key(name: str, default: Any = MISSING) -> Any:
    """A field whose JSON key is ``name`` (required unless ``default`` is given)."""
    return field(default=default, metadata={_KEY: name})


def optional(name: str | None = None) -> Any:
    """A field that is None by default and left out of the JSON while it is None."""
    metadata = {_OMIT_NONE: True, **({_KEY: name} if name else {})}
    return field(default=None, metadata=metadata)


def flattened() -> Any:
    """A nested record (or None) whose keys are written into the parent's object."""
    return field(default=None, metadata={_FLATTEN: True})


@dataclass(frozen=True, kw_only=True)
class Record:
    """A JSON object with typed fields (see the module docstring)."""

    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The JSON object: the fields in their order, then the keys kept in ``extra``."""
        data: dict[str, Any] = {}
        for spec in _fields(type(self)):
            value = getattr(self, spec.name)
            if spec.metadata.get(_FLATTEN):
                data.update(value.to_json() if value is not None else {})
            elif value is not None or not spec.metadata.get(_OMIT_NONE):
                data[_json_key(spec)] = _encode(value)
        return {**data, **self.extra}

    @classmethod
    def from_json(cls: type[R], data: Any) -> R:
        """Read the record from a JSON object (keys it does not know go to ``extra``)."""
        if not isinstance(data, Mapping):
            raise RecordError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        hints = _hints(cls)
        values: dict[str, Any] = {}
        known: set[str] = set()
        for spec in _fields(cls):
            if spec.metadata.get(_FLATTEN):
                nested = _record_type(hints[spec.name])
                known |= nested.json_keys()
                values[spec.name] = nested.from_json(data) if nested.present_in(data) else None
                continue
            name = _json_key(spec)
            known.add(name)
            if name in data:
                values[spec.name] = _decode(hints[spec.name], data[name])
            elif _required(spec):
                raise RecordError(f"{cls.__name__}: no {name!r}")
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**values, extra=extra)

    @classmethod
    def json_keys(cls) -> set[str]:
        """Every key the record reads itself, those of flattened records included."""
        hints = _hints(cls)
        keys: set[str] = set()
        for spec in _fields(cls):
            if spec.metadata.get(_FLATTEN):
                keys |= _record_type(hints[spec.name]).json_keys()
            else:
                keys.add(_json_key(spec))
        return keys

    @classmethod
    def present_in(cls, data: Mapping[str, Any]) -> bool:
        """Whether ``data`` holds every required key of this record (a flattened one)."""
        return all(_json_key(spec) in data for spec in _fields(cls) if _required(spec))


def _fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The record's fields, without ``extra``."""
    return [spec for spec in dataclasses.fields(cls) if spec.name != "extra"]


def _json_key(spec: dataclasses.Field[Any]) -> str:
    return str(spec.metadata.get(_KEY, spec.name))


def _required(spec: dataclasses.Field[Any]) -> bool:
    return spec.default is MISSING and spec.default_factory is MISSING


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The field types, resolved once per class (the modules use postponed annotations)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _record_type(hint: Any) -> type[Record]:
    """The record class of ``X | None``."""
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and issubclass(candidate, Record):
            return candidate
    raise TypeError(f"{hint} is not a record type")


def _encode(value: Any) -> Any:
    """A field's value as JSON (records as objects, tuples as lists)."""
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        return {name: _encode(item) for name, item in value.items()}
    return value


def _decode(hint: Any, value: Any) -> Any:
    """A JSON value as the field's type wants it (records, tuples; the rest as read)."""
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        kinds = [arg for arg in args if arg is not type(None)]
        return _decode(kinds[0], value) if len(kinds) == 1 else value
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint.from_json(value)
    if origin in (list, tuple) and isinstance(value, list):
        items = [_decode(args[0], item) for item in value] if args else value
        return tuple(items) if origin is tuple else items
    if origin is dict and isinstance(value, Mapping) and len(args) == 2:
        return {name: _decode(args[1], item) for name, item in value.items()}
    return value
