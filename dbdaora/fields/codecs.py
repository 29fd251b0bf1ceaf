"""Per-type value codecs, compiled once per field from its annotation.

A codec checks a value against the annotation and converts it to and from the
text a Redis hash field holds. Fallback backends reuse the same codec: they keep
native values where their store has them and the codec's text otherwise.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs
from cattrs.preconf.json import make_converter

from dbdaora.exceptions import ConfigurationError

Check = Callable[[Any], bool]

_converter = make_converter()
_converter.register_unstructure_hook(decimal.Decimal, str)
_converter.register_structure_hook(decimal.Decimal, lambda value, _: decimal.Decimal(value))


class Category(enum.Enum):
    """How a value is stored; backends map each category to their native type."""

    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    BYTES = "bytes"
    DATETIME = "datetime"
    DATE = "date"
    DECIMAL = "decimal"
    JSON = "json"


@attrs.frozen
class Codec:
    """How one annotated type is checked, normalized and turned into text.

    ``decode`` raises (any exception) on text that does not parse: callers treat
    that as corrupt data.
    """

    type: Any
    type_name: str
    category: Category
    optional: bool
    check: Check
    encode: Callable[[Any], str | bytes]
    decode: Callable[[bytes], Any]
    normalize: Callable[[Any], Any] | None = None


def _decode_bool(raw: bytes) -> bool:
    if raw == b"1":
        return True
    if raw == b"0":
        return False
    raise ValueError(f"not a stored bool: {raw!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_date(value: Any) -> bool:
    return isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)


def _is_text(value: Any) -> bool:
    """A str Redis can hold: one that encodes as UTF-8 (no lone surrogate)."""
    return isinstance(value, str) and (value.isascii() or not unencodable(value))


def unencodable(value: Any) -> bool:
    """Whether ``value`` is a str that has no UTF-8 form (it holds a lone surrogate)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return True
    return False


def mismatch_text(codec: Codec, value: Any) -> str:
    """``expected <type>, got <value>`` for a value its codec refused, with the reason
    when the type is right but the text is not (a lone surrogate)."""
    expected = codec.type_name + (" or None" if codec.optional else "")
    return f"expected {expected}, got {value!r}{unencodable_note(value)}"


def unencodable_note(value: Any) -> str:
    """Why a value of the right type was refused, when a str in it has no UTF-8 form."""
    return ": a lone surrogate has no UTF-8 form" if _holds_unencodable(value) else ""


def _holds_unencodable(value: Any) -> bool:
    if isinstance(value, dict):
        return any(map(_holds_unencodable, value)) or any(map(_holds_unencodable, value.values()))
    if isinstance(value, (list, tuple)):
        return any(map(_holds_unencodable, value))
    return unencodable(value)


def _instance_of(cls: type) -> Check:
    return lambda value: isinstance(value, cls)


_SIMPLE: dict[Any, tuple[Category, Check, Callable[[Any], str | bytes], Callable[[bytes], Any]]] = {
    str: (Category.STR, _is_text, lambda v: v, lambda raw: raw.decode()),
    int: (Category.INT, _is_int, str, int),
    float: (Category.FLOAT, _is_number, repr, float),
    bool: (Category.BOOL, _instance_of(bool), lambda v: "1" if v else "0", _decode_bool),
    bytes: (Category.BYTES, _instance_of(bytes), lambda v: v, lambda raw: raw),
    datetime.datetime: (
        Category.DATETIME,
        _instance_of(datetime.datetime),
        lambda v: v.isoformat(),
        lambda raw: datetime.datetime.fromisoformat(raw.decode()),
    ),
    datetime.date: (
        Category.DATE,
        _is_date,
        lambda v: v.isoformat(),
        lambda raw: datetime.date.fromisoformat(raw.decode()),
    ),
    decimal.Decimal: (
        Category.DECIMAL,
        _instance_of(decimal.Decimal),
        str,
        lambda raw: decimal.Decimal(raw.decode()),
    ),
}


def _deep_check(tp: Any) -> Check | None:
    """A check for a JSON-stored type, or None when the type is not supported."""
    if tp is Any:
        return lambda value: True
    if tp in _SIMPLE:
        return _SIMPLE[tp][1]
    if isinstance(tp, type) and (issubclass(tp, enum.Enum) or attrs.has(tp)):
        return _instance_of(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        checks = [_deep_check(arg) for arg in args if arg is not type(None)]
        if any(check is None for check in checks):
            return None
        allow_none = type(None) in args
        real = typing.cast(list[Check], checks)
        return lambda v: (v is None and allow_none) or any(check(v) for check in real)
    if tp in (list, dict) or origin in (list, dict, tuple):
        container = origin or tp
        if not args:
            return _instance_of(container)
        if container is dict:
            key_check, value_check = _deep_check(args[0]), _deep_check(args[1])
            if key_check is None or value_check is None:
                return None
            return lambda v: (
                isinstance(v, dict) and all(key_check(k) and value_check(x) for k, x in v.items())
            )
        if container is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return None
        item_check = _deep_check(args[0])
        if item_check is None:
            return None
        return lambda v: isinstance(v, container) and all(item_check(x) for x in v)
    return None


def _json_codec(tp: Any) -> tuple[Callable[[Any], str], Callable[[bytes], Any]]:
    unstructure = _converter.get_unstructure_hook(tp)
    structure = _converter.get_structure_hook(tp)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def encode(value: Any) -> str:
        return dumps(unstructure(value))

    def decode(raw: bytes) -> Any:
        return structure(json.loads(raw), tp)

    return encode, decode


def type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else repr(tp).replace("typing.", "")


def compile_codec(tp: Any, *, model: str, field: str) -> Codec:
    """Build the codec of one annotation.

    Raises:
        ConfigurationError: the annotation is not a type dbdaora can store.
    """
    optional = False
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union) and type(None) in args:
        rest = tuple(arg for arg in args if arg is not type(None))
        optional = True
        tp = rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007 - built at run time
    name = type_name(tp)
    if tp in _SIMPLE:
        category, check, encode, decode = _SIMPLE[tp]
        return Codec(
            type=tp,
            type_name=name,
            category=category,
            optional=optional,
            check=check,
            encode=encode,
            decode=decode,
            normalize=float if tp is float else None,
        )
    deep_check = _deep_check(tp)
    if deep_check is None:
        raise ConfigurationError(
            f"{model}.{field}: dbdaora cannot store values of type {name}", model=model
        )
    json_encode, json_decode = _json_codec(tp)
    return Codec(
        type=tp,
        type_name=name,
        category=Category.JSON,
        optional=optional,
        check=deep_check,
        encode=json_encode,
        decode=json_decode,
    )
