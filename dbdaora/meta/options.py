"""Declarations checked and compiled into ``ModelMeta``, once per class.

A ``Model`` subclass (``dbdaora.model``) and a 0.27 dataclass entity
(``dbdaora.legacy``) both come through ``compile_meta``. Which Redis data type a
model maps to follows from its field descriptors, by the ``LAYOUTS`` table: a
new data type adds a row there (and its manager in ``dbdaora.managers``).
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Mapping
from typing import Any

import attrs

from dbdaora.exceptions import ConfigurationError, LayoutError
from dbdaora.fields import FieldKind, FieldSpec, compile_codec
from dbdaora.fields.codecs import Category
from dbdaora.fields.spec import NO_DEFAULT
from dbdaora.meta.field_info import FieldInfo
from dbdaora.meta.info import UNSET, ModelMeta, StoreKind
from dbdaora.validators import is_positive_int

COMMON_OPTIONS = frozenset({"key_name", "expire_time"})
RESERVED_NAMES = frozenset({"objects", "Meta", "using"})


@attrs.frozen
class Layout:
    """The fields (beside its ``Key()`` ones) that make a model of one data type.

    Attributes:
        kind: the data type.
        singles: descriptors the model declares exactly once each.
        repeated: the descriptor it may declare any number of times.
        options: ``Meta`` options only this data type takes.
    """

    kind: StoreKind
    singles: tuple[FieldKind, ...] = ()
    repeated: FieldKind | None = None
    options: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return self.kind.value.replace("_", "-")


# A model whose fields include one of a layout's singles is of that layout;
# else of the one whose descriptors repeat (a hash).
LAYOUTS = (
    Layout(
        StoreKind.SORTED_SET,
        singles=(FieldKind.MEMBER, FieldKind.SCORE),
        options=frozenset({"max_size"}),
    ),
    Layout(StoreKind.FLAG, singles=(FieldKind.FLAG,)),
    Layout(StoreKind.HASH, repeated=FieldKind.FIELD),
    Layout(
        StoreKind.GEOSPATIAL,
        singles=(FieldKind.GEO_MEMBER, FieldKind.LATITUDE, FieldKind.LONGITUDE),
    ),
)
META_OPTIONS = COMMON_OPTIONS.union(*(layout.options for layout in LAYOUTS))

# The codec categories a descriptor accepts, where it limits them.
ALLOWED_CATEGORIES = {
    FieldKind.KEY: ("str", "int"),
    FieldKind.MEMBER: ("str", "int"),
    FieldKind.GEO_MEMBER: ("str",),
    FieldKind.LATITUDE: ("float",),
    FieldKind.LONGITUDE: ("float",),
    FieldKind.FLAG: ("bool",),
}


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def declared_fields(cls: type, namespace: Mapping[str, Any]) -> dict[str, tuple[Any, FieldSpec]]:
    """The annotated attributes of the class body, with their specs."""
    own = namespace.get("__annotations__", {})
    try:
        hints = typing.get_type_hints(cls)
    except NameError as exc:
        raise ConfigurationError(
            f"{cls.__name__}: cannot resolve an annotation: {exc}", model=cls.__name__
        ) from exc
    bare = [name for name, value in namespace.items() if isinstance(value, FieldSpec)]
    bare = [name for name in bare if name not in own]
    if bare:
        raise ConfigurationError(
            f"{cls.__name__}.{bare[0]}: a field needs an annotation, as in "
            f"`{bare[0]}: str = {namespace[bare[0]].kind.value}()`",
            model=cls.__name__,
        )
    declared: dict[str, tuple[Any, FieldSpec]] = {}
    for name in own:
        annotation = hints[name]
        if typing.get_origin(annotation) is typing.ClassVar:
            continue
        value = namespace.get(name, NO_DEFAULT)
        spec = value if isinstance(value, FieldSpec) else FieldSpec(FieldKind.FIELD, default=value)
        declared[name] = (annotation, spec)
    return declared


def _descriptors(kinds: typing.Iterable[FieldKind]) -> str:
    """``A()``, ``A() and B()``, ``A(), B() and C()``."""
    names = [f"{kind.value}()" for kind in kinds]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _check_layout(name: str, declared: Mapping[str, tuple[Any, FieldSpec]]) -> Layout:
    def named(kind: FieldKind) -> list[str]:
        return [n for n, (_, spec) in declared.items() if spec.kind is kind]

    for field_name in declared:
        if field_name in RESERVED_NAMES or field_name.startswith("_"):
            raise ConfigurationError(
                f"{name}: field name {field_name!r} collides with the model API", model=name
            )
    if not named(FieldKind.KEY):
        raise ConfigurationError(f"{name}: a model needs at least one Key() field", model=name)
    layout = next(
        (layout for layout in LAYOUTS if any(named(kind) for kind in layout.singles)),
        next(layout for layout in LAYOUTS if not layout.singles),
    )
    found = {kind: named(kind) for kind in layout.singles}
    given = [n for names in found.values() for n in names]
    if any(len(names) > 1 for names in found.values()):
        raise LayoutError(
            f"{name}: at most one {' and one '.join(f'{k.value}()' for k in layout.singles)}, "
            f"got {given}",
            model=name,
            fields=given,
        )
    if not all(found.values()):
        raise LayoutError(
            f"{name}: {_descriptors(layout.singles)} go together, got only {given}",
            model=name,
            fields=given,
        )
    allowed = {FieldKind.KEY, *layout.singles, *filter(None, [layout.repeated])}
    foreign = [n for n, (_, spec) in declared.items() if spec.kind not in allowed]
    if foreign:
        raise LayoutError(
            f"{name}: a {layout.label} model holds "
            f"{_descriptors((FieldKind.KEY, *layout.singles))} only; remove {foreign}",
            model=name,
            fields=foreign,
        )
    return layout


def _options(name: str, layout: Layout, given: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(given) - META_OPTIONS
    if unknown:
        raise ConfigurationError(
            f"{name}.Meta: unknown option(s) {sorted(unknown)}; known: {sorted(META_OPTIONS)}",
            model=name,
        )
    key_name = given.get("key_name", snake_case(name))
    if not isinstance(key_name, str) or not key_name or ":" in key_name:
        raise ConfigurationError(
            f"{name}.Meta.key_name must be a non-empty str without ':', got {key_name!r}",
            model=name,
        )
    expire_time = given.get("expire_time", UNSET)
    if expire_time not in (UNSET, None) and not is_positive_int(expire_time):
        raise ConfigurationError(
            f"{name}.Meta.expire_time must be a positive int or None, got {expire_time!r}",
            model=name,
        )
    misplaced = sorted(
        option
        for option in set(given) - COMMON_OPTIONS - layout.options
        if given[option] is not None
    )
    if misplaced:
        owners = [other.label for other in LAYOUTS if misplaced[0] in other.options]
        raise ConfigurationError(
            f"{name}.Meta.{misplaced[0]} is for {' and '.join(owners)} models", model=name
        )
    max_size = given.get("max_size")
    if max_size is not None and not is_positive_int(max_size):
        raise ConfigurationError(
            f"{name}.Meta.max_size must be a positive int, got {max_size!r}", model=name
        )
    return {"key_name": key_name, "expire_time": expire_time, "max_size": max_size}


def compile_meta(
    cls: type, declared: Mapping[str, tuple[Any, FieldSpec]], options: Mapping[str, Any]
) -> ModelMeta:
    """Check a declaration and compile its metadata, leaving the class as it is.

    ``declared`` maps each attribute, in order, to its annotation and spec;
    ``options`` holds the ``Meta`` options given. A ``Model`` and a 0.27-style
    dataclass entity (``dbdaora.legacy``) both go through here.

    Raises:
        ConfigurationError: the declaration is wrong; the message names the model.
    """
    name = cls.__name__
    layout = _check_layout(name, declared)
    settings = _options(name, layout, options)

    infos: list[FieldInfo] = []
    for field_name, (annotation, spec) in declared.items():
        codec = compile_codec(annotation, model=name, field=field_name)
        if spec.kind is FieldKind.SCORE:
            if codec.category.value not in ("float", "int"):
                raise ConfigurationError(f"{name}.{field_name}: Score() must be float", model=name)
            codec = _score_codec(codec)
        allowed = ALLOWED_CATEGORIES.get(spec.kind)
        if allowed is not None and codec.category.value not in allowed:
            raise ConfigurationError(
                f"{name}.{field_name}: {spec.kind.value}() must be {' or '.join(allowed)}, "
                f"got {codec.type_name}",
                model=name,
            )
        _check_value_rules(name, field_name, spec, codec)
        infos.append(
            FieldInfo(
                name=field_name,
                kind=spec.kind,
                codec=codec,
                default=spec.default,
                factory=spec.factory,
                index=spec.index,
                raw_name=field_name.encode(),
            )
        )

    fields = tuple(infos)
    by_kind = {kind_: [f for f in fields if f.kind is kind_] for kind_ in FieldKind}
    key_name = settings["key_name"]
    return ModelMeta(
        model=cls,
        name=name,
        kind=layout.kind,
        key_name=key_name,
        expire_time=settings["expire_time"],
        max_size=settings["max_size"],
        fields=fields,
        key_fields=tuple(by_kind[FieldKind.KEY]),
        member=next(iter(by_kind[FieldKind.MEMBER] + by_kind[FieldKind.GEO_MEMBER]), None),
        score=next(iter(by_kind[FieldKind.SCORE]), None),
        flag=next(iter(by_kind[FieldKind.FLAG]), None),
        by_name={f.name: f for f in fields},
        by_raw_name={f.raw_name: f for f in fields},
        key_prefix=f"{key_name}:",
        marker_prefix=f"{key_name}:not-found:",
        str_key=[(f.codec.category, f.codec.optional) for f in by_kind[FieldKind.KEY]]
        == [(Category.STR, False)],
        latitude=next(iter(by_kind[FieldKind.LATITUDE]), None),
        longitude=next(iter(by_kind[FieldKind.LONGITUDE]), None),
    )


def _check_value_rules(model: str, field: str, spec: FieldSpec, codec: Any) -> None:
    """A key, member or score is never None; a default is a value of its field."""
    if codec.optional and spec.kind is not FieldKind.FIELD:
        raise ConfigurationError(
            f"{model}.{field}: a {spec.kind.value}() cannot be None; annotate it "
            f"{codec.type_name}, without None",
            model=model,
        )
    default = spec.default
    if default is NO_DEFAULT or (default is None and codec.optional) or codec.check(default):
        return
    raise ConfigurationError(
        f"{model}.{field}: default {default!r} is not a {codec.type_name}"
        f"{' or None' if codec.optional else ''}",
        model=model,
    )


def _score_codec(codec: Any) -> Any:
    """A score's codec: its number's, refusing NaN, which no fallback can order or
    store as a score (and Redis refuses). ±inf are scores as Redis has them."""
    number_check = codec.check

    def check(value: Any) -> bool:
        return bool(number_check(value)) and not (isinstance(value, float) and math.isnan(value))

    return attrs.evolve(codec, check=check, type_name=f"{codec.type_name} (not NaN)")
