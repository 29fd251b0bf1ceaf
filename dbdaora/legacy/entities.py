"""dbdaora 0.27's entities, compiled with the machinery a ``Model`` gets.

A hash entity is a plain dataclass: its ``key_attrs`` are the key fields, every
other field is a ``Field()``; or a TypedDict (its entities are dicts), stored
through a dataclass of its keys (``typed_dict_model``). A sorted-set entity (a ``SortedSetEntity``
subclass) is the whole set: its key fields, the members in ``data``, and
``max_size``; it is mapped onto a member model (its key fields, a
``SortedMember()`` and a ``Score()``), one instance per member, as a declared
sorted-set model is. A boolean entity is any dataclass holding its key
attributes: it is mapped onto a flag model of those and a ``Flag()`` named
``value``, as 0.27's fallback record ``{"value": true}``; its other fields are
never stored, as in 0.27. The class itself is never changed into an attrs class:
``ModelMeta.build`` fills a plain dataclass instance the same way.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Sequence
from typing import Any

from dbdaora.exceptions import ConfigurationError
from dbdaora.fields import Field, FieldSpec, Flag, Key, Score, SortedMember
from dbdaora.fields.spec import NO_DEFAULT
from dbdaora.meta import ModelMeta, compile_meta

# What ``data`` holds: (member, score) pairs to add; read back, the members as
# bytes, or (member bytes, score) pairs with ``withscores=True``.
SortedSetData = Sequence[Any]

MEMBER = "member"
SCORE = "score"
VALUE = "value"


@typing.dataclass_transform()
class SortedSetEntity:
    """Base of 0.27 sorted-set entities.

    A subclass declares its key fields (``id: str`` when it declares none) and
    becomes a dataclass with those fields first, then ``data`` and
    ``max_size=None``. ``max_size`` is the set's member count when read with
    ``withmaxsize=True``, None otherwise; writes ignore it, as 0.27 did.
    """

    data: SortedSetData
    max_size: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = {
            name: annotation
            for name, annotation in vars(cls).get("__annotations__", {}).items()
            if name not in ("data", "max_size")
        }
        cls.__annotations__ = {
            **(own or {"id": str}),
            "data": SortedSetData,
            "max_size": int | None,
        }
        dataclasses.dataclass(cls)


def repository_key_name(repository: type) -> str:
    """0.27's key name: the repository class name in snake_case, ``_repository`` removed."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", repository.__name__).lower().replace("_repository", "")


def _hints(entity: type, key_attrs: Sequence[str], repository: str) -> dict[str, Any]:
    """The entity's field types, after checking it is a dataclass holding ``key_attrs``."""
    name = entity.__name__
    if not dataclasses.is_dataclass(entity):
        raise ConfigurationError(f"{repository}: entity {name} must be a dataclass", model=name)
    if "__slots__" in vars(entity):
        raise ConfigurationError(
            f"{repository}: entity {name} must not use slots (instances are filled "
            f"through __dict__)",
            model=name,
        )
    names = [field.name for field in dataclasses.fields(entity)]
    if (
        isinstance(key_attrs, str)
        or not key_attrs
        or len(set(key_attrs)) != len(key_attrs)
        or any(attr not in names for attr in key_attrs)
    ):
        raise ConfigurationError(
            f"{repository}.key_attrs must name distinct fields of {name} {names}, "
            f"got {key_attrs!r}",
            model=name,
        )
    try:
        hints = typing.get_type_hints(entity)
    except NameError as exc:
        raise ConfigurationError(
            f"{name}: cannot resolve an annotation: {exc}", model=name
        ) from exc
    return {field: hints[field] for field in names}


def typed_dict_model(
    entity: type, key_attrs: Sequence[str], repository: str
) -> tuple[type, frozenset[str]]:
    """The dataclass a TypedDict hash entity is stored through, and the keys it does
    not require: its required keys, then the others as ``T | None = None`` (a key
    left out of the dict is stored as None).

    ``NotRequired[...]``/``Required[...]`` are read from the annotations, so they
    count under ``from __future__ import annotations`` too.

    Raises:
        ConfigurationError: a key attribute that is not a required key, or an
            annotation that does not resolve.
    """
    name = entity.__name__
    try:
        hints = typing.get_type_hints(entity)
        marked = typing.get_type_hints(entity, include_extras=True)
    except NameError as exc:
        raise ConfigurationError(
            f"{name}: cannot resolve an annotation: {exc}", model=name
        ) from exc
    declared_optional: frozenset[str] = getattr(entity, "__optional_keys__", frozenset())
    optional = frozenset(
        key
        for key in hints
        if typing.get_origin(marked[key]) is typing.NotRequired
        or (typing.get_origin(marked[key]) is not typing.Required and key in declared_optional)
    )
    if isinstance(key_attrs, str) or set(key_attrs) & optional or not set(key_attrs) <= set(hints):
        raise ConfigurationError(
            f"{repository}.key_attrs must name required keys of {name} "
            f"{sorted(set(hints) - optional)}, got {key_attrs!r}",
            model=name,
        )
    fields: list[Any] = [(key, hints[key]) for key in hints if key not in optional]
    fields += [
        (key, hints[key] | None, dataclasses.field(default=None))
        for key in hints
        if key in optional
    ]
    model = dataclasses.make_dataclass(name, fields)
    model.__module__ = entity.__module__
    return model, optional


def hash_meta(entity: type, key_attrs: Sequence[str], key_name: str, repository: str) -> ModelMeta:
    """The compiled metadata of a dataclass hash entity, its key fields in ``key_attrs`` order."""
    hints = _hints(entity, key_attrs, repository)
    declared: dict[str, tuple[Any, FieldSpec]] = {attr: (hints[attr], Key()) for attr in key_attrs}
    for field in dataclasses.fields(entity):
        if field.name in declared:
            continue
        default = NO_DEFAULT if field.default is dataclasses.MISSING else field.default
        factory = None if field.default_factory is dataclasses.MISSING else field.default_factory
        declared[field.name] = (hints[field.name], Field(default=default, factory=factory))
    return compile_meta(entity, declared, {"key_name": key_name})


def sorted_set_meta(
    entity: type, key_attrs: Sequence[str], key_name: str, repository: str
) -> ModelMeta:
    """The compiled metadata of the member model of a ``SortedSetEntity`` subclass."""
    if not (isinstance(entity, type) and issubclass(entity, SortedSetEntity)):
        raise ConfigurationError(
            f"{repository}: entity {entity!r} must subclass SortedSetEntity", model=repository
        )
    hints = _hints(entity, key_attrs, repository)
    if {MEMBER, SCORE} & set(key_attrs) or {"data", "max_size"} & set(key_attrs):
        raise ConfigurationError(
            f"{repository}.key_attrs cannot use the names data, max_size, {MEMBER}, {SCORE}",
            model=entity.__name__,
        )
    declared: dict[str, tuple[Any, FieldSpec]] = {attr: (hints[attr], Key()) for attr in key_attrs}
    declared[MEMBER] = (str, SortedMember())
    declared[SCORE] = (float, Score())
    member_model = dataclasses.make_dataclass(
        entity.__name__,
        [(name, annotation) for name, (annotation, _) in declared.items()],
    )
    member_model.__module__ = entity.__module__
    return compile_meta(member_model, declared, {"key_name": key_name})


def flag_meta(entity: type, key_attrs: Sequence[str], key_name: str, repository: str) -> ModelMeta:
    """The compiled metadata of the flag model of a 0.27 boolean entity."""
    hints = _hints(entity, key_attrs, repository)
    if VALUE in key_attrs:
        raise ConfigurationError(
            f"{repository}.key_attrs cannot use the name {VALUE}", model=entity.__name__
        )
    declared: dict[str, tuple[Any, FieldSpec]] = {attr: (hints[attr], Key()) for attr in key_attrs}
    declared[VALUE] = (bool, Flag())
    flag_model = dataclasses.make_dataclass(
        entity.__name__,
        [(name, annotation) for name, (annotation, _) in declared.items()],
    )
    flag_model.__module__ = entity.__module__
    return compile_meta(flag_model, declared, {"key_name": key_name})
