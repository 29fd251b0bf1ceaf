"""``Model``: declare a class once, read and write it through ``Model.objects``.

The metaclass only asks ``dbdaora.meta`` to compile the declaration and turns
the class into an attrs class whose constructor checks every value;
``objects`` hands out the manager of the model's data type.

Type checkers see the constructor through ``dataclass_transform`` and
``objects`` through the overloads of ``Objects.__get__``: a ``Model`` subclass
gets a ``HashManager`` of itself, a ``SortedSetModel`` subclass a
``SortedSetManager`` of itself, a ``GeoModel`` subclass a ``GeoManager``, a
``FlagModel`` subclass a ``FlagManager``.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar, overload

import attrs

from dbdaora.exceptions import (
    ConfigurationError,
    LayoutError,
    UnknownFieldError,
    ValidationError,
)
from dbdaora.fields import (
    Codec,
    Field,
    Flag,
    GeoMember,
    Key,
    Latitude,
    Longitude,
    Score,
    SortedMember,
    mismatch_text,
)
from dbdaora.fields.spec import NO_DEFAULT
from dbdaora.managers import (
    FlagManager,
    GeoManager,
    HashManager,
    Manager,
    SortedSetManager,
    manager_class,
)
from dbdaora.meta import ModelMeta, StoreKind, compile_meta, declared_fields, register

HashM = TypeVar("HashM", bound="Model")
SortedM = TypeVar("SortedM", bound="SortedSetModel")
GeoM = TypeVar("GeoM", bound="GeoModel")
FlagM = TypeVar("FlagM", bound="FlagModel")


@typing.dataclass_transform(
    kw_only_default=True,
    field_specifiers=(Key, Field, SortedMember, Score, GeoMember, Latitude, Longitude, Flag),
)
class ModelType(type):
    """Builds each model's ``_meta`` once, at class creation; nothing more."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> ModelType:
        options = namespace.pop("Meta", None)
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        model_bases = [base for base in bases if isinstance(base, ModelType)]
        if model_bases and "_kind" not in namespace:
            if any("_meta" in vars(base) for base in model_bases):
                raise ConfigurationError(
                    f"{name}: a model cannot subclass another model; declare its fields itself",
                    model=name,
                )
            cls._meta = _build(cls, namespace, options)  # type: ignore[attr-defined] # set here, declared on Model
        return cls


class Objects:
    """The ``objects`` attribute: the model's manager, reached through the class only."""

    def __init__(self) -> None:
        self._managers: dict[type, Manager[Any]] = {}

    # The overloads only tell type checkers which manager a model gets (the
    # first that fits wins); at run time the model's fields choose it (MANAGERS).
    @overload
    def __get__(self, instance: None, owner: type[SortedM]) -> SortedSetManager[SortedM]: ...
    @overload
    def __get__(self, instance: None, owner: type[GeoM]) -> GeoManager[GeoM]: ...
    @overload
    def __get__(self, instance: None, owner: type[FlagM]) -> FlagManager[FlagM]: ...
    @overload
    def __get__(self, instance: None, owner: type[HashM]) -> HashManager[HashM]: ...
    def __get__(self, instance: object, owner: type) -> Any:
        if instance is not None:
            raise AttributeError(
                f"objects is reached through the class ({owner.__name__}.objects), not an instance"
            )
        manager = self._managers.get(owner)
        if manager is None:
            meta: ModelMeta | None = vars(owner).get("_meta")
            if meta is None:
                raise AttributeError(f"{owner.__name__} declares no model; subclass it")
            manager = manager_class(meta)(meta)
            self._managers[owner] = manager
        return manager


def _converter(model: str, field: str, codec: Codec) -> Callable[[Any], Any]:
    check, normalize, optional = codec.check, codec.normalize, codec.optional

    def convert(value: Any) -> Any:
        if value is None:
            if optional:
                return None
        elif check(value):
            return normalize(value) if normalize is not None else value
        raise ValidationError(
            f"{model}.{field}: {mismatch_text(codec, value)}",
            model=model,
            field=field,
            value=value,
        )

    return convert


def _build(cls: type, namespace: Mapping[str, Any], options: type | None) -> ModelMeta:
    """Check a model declaration, compile its metadata, turn the class into an attrs class.

    Raises:
        ConfigurationError: the declaration is wrong; the message names the model.
    """
    given = {k: v for k, v in vars(options).items() if not k.startswith("__")} if options else {}
    meta = compile_meta(cls, declared_fields(cls, namespace), given)
    demanded: StoreKind | None = getattr(cls, "_kind", None)
    if demanded is not None and meta.kind is not demanded:
        needs = {
            StoreKind.SORTED_SET: "a SortedMember() and a Score()",
            StoreKind.GEOSPATIAL: "a GeoMember(), a Latitude() and a Longitude()",
            StoreKind.FLAG: "a Flag()",
        }
        base = next(b.__name__ for b in cls.__mro__[1:] if "_kind" in vars(b))
        raise LayoutError(
            f"{meta.name}: a {base} declares {needs[demanded]}",
            model=meta.name,
            fields=[field.name for field in meta.fields if field not in meta.key_fields],
        )
    attributes: dict[str, Any] = {}
    for field in meta.fields:
        default: Any = attrs.NOTHING if field.default is NO_DEFAULT else field.default
        if field.factory is not None:
            default = attrs.Factory(field.factory)
        attributes[field.name] = attrs.field(
            default=default, converter=_converter(meta.name, field.name, field.codec), kw_only=True
        )
        if field.name in cls.__dict__:
            delattr(cls, field.name)
    attrs.define(cls, these=attributes, slots=False, eq=True, order=False, repr=True)
    # attrs' own __setattr__ (it converts) is wrapped; a class without one gets object's.
    converting = vars(cls).get("__setattr__", object.__setattr__)
    cls.__setattr__ = _declared_only(meta, converting)  # type: ignore[method-assign,assignment] # a function of the class, as attrs sets it
    register(meta)
    return meta


def _declared_only(
    meta: ModelMeta, converting: Callable[[Any, str, Any], None]
) -> Callable[[Any, str, Any], None]:
    """``__setattr__`` refusing a name that is no field (attrs' ``__init__`` bypasses it)."""
    names = frozenset(meta.by_name)

    def setattr_declared(self: Any, name: str, value: Any) -> None:
        if name not in names:
            raise UnknownFieldError(
                f"{meta.name} has no field {name!r}; its fields: {', '.join(meta.by_name)}",
                model=meta.name,
                field=name,
                value=value,
            )
        converting(self, name, value)

    return setattr_declared


class Model(metaclass=ModelType):
    """Base of declared models.

    Subclasses annotate their attributes with ``Key()``, ``Field()``,
    ``SortedMember()`` and ``Score()``, or ``Flag()``, and may carry a ``class Meta`` with
    ``key_name``, ``expire_time`` and (sorted sets) ``max_size``. Type checkers
    see ``objects`` as a ``HashManager``; sorted-set models subclass
    ``SortedSetModel`` for theirs.
    """

    _meta: ClassVar[ModelMeta]
    # The data type a declaration base demands of its subclasses; None: the fields choose.
    _kind: ClassVar[StoreKind | None] = None
    objects: ClassVar[Objects] = Objects()


class SortedSetModel(Model):
    """Base of sorted-set models: one ``SortedMember()``, one ``Score()``, and ``Key()`` fields.

    ``objects`` is then a ``SortedSetManager`` to type checkers too. (A ``Model``
    subclass with these fields works alike at run time.)
    """

    _kind = StoreKind.SORTED_SET


class GeoModel(Model):
    """Base of geospatial models: one ``GeoMember()`` (str), one ``Latitude()`` and one
    ``Longitude()`` (floats, in degrees), and ``Key()`` fields: one Redis geo set per key.

    ``objects`` is then a ``GeoManager`` to type checkers too. (A ``Model``
    subclass with these fields works alike at run time.)
    """

    _kind = StoreKind.GEOSPATIAL


class FlagModel(Model):
    """Base of flag models: ``Key()`` fields and one ``Flag()`` (bool), nothing else.

    Each key holds a flag, set or not, in dbdaora 0.27's boolean layout (Redis
    ``1``, ``0`` for a remembered miss; a fallback record per set flag).
    ``objects`` is then a ``FlagManager`` to type checkers too.
    """

    _kind = StoreKind.FLAG
