"""A model's metadata, built and checked once at class creation.

``ModelMeta`` holds everything the per-call path needs already compiled: the key
builder, each field's codec, and the encode/decode functions between instances
and the Redis hash or sorted-set member form.
"""

from __future__ import annotations

import enum
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from dbdaora.exceptions import ConfigurationError, ValidationError
from dbdaora.fields import Codec, FieldKind, FieldSpec, compile_codec
from dbdaora.fields.codecs import Category
from dbdaora.fields.spec import NO_DEFAULT

META_OPTIONS = frozenset({"key_name", "expire_time", "max_size"})
RESERVED_NAMES = frozenset({"objects", "Meta", "using"})


class Unset(enum.Enum):
    """``Meta.expire_time`` left out: the session's setting applies."""

    TOKEN = 0


UNSET = Unset.TOKEN

# Every declared model by key_name, for ``Session.create_all()``. A model declared
# again under the same key_name (a module reloaded, a test) replaces the earlier one.
MODELS: dict[str, ModelMeta] = {}


class StoreKind(enum.Enum):
    HASH = "hash"
    SORTED_SET = "sorted_set"


@attrs.frozen
class FieldInfo:
    """One declared attribute, compiled."""

    name: str
    kind: FieldKind
    codec: Codec
    default: Any
    factory: Callable[[], Any] | None
    index: bool
    raw_name: bytes

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT or self.factory is not None

    def default_value(self) -> Any:
        if self.factory is not None:
            return self.factory()
        return None if self.default is NO_DEFAULT else self.default


def is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class CorruptData(Exception):  # noqa: N818 - internal signal, never leaves the mapper
    """Stored text that does not parse to its field's type."""


@attrs.frozen
class ModelMeta:
    """Compiled metadata of one model class (``Model._meta``)."""

    model: type
    name: str
    kind: StoreKind
    key_name: str
    expire_time: int | Unset | None
    max_size: int | None
    fields: tuple[FieldInfo, ...]
    key_fields: tuple[FieldInfo, ...]
    member: FieldInfo | None
    score: FieldInfo | None
    by_name: Mapping[str, FieldInfo]
    by_raw_name: Mapping[bytes, FieldInfo]
    _key_prefix: str
    _marker_prefix: str
    # One key field holding a plain str: a valid part is the record name as it is.
    _str_key: bool

    # -- keys -------------------------------------------------------------------

    def key_parts(self, args: Sequence[Any], named: Mapping[str, Any]) -> tuple[Any, ...]:
        """The key parts of a call, given by position or by key field name."""
        if named:
            unknown = set(named) - {f.name for f in self.key_fields}
            if unknown or args:
                raise ValidationError(
                    f"{self.name}: key parts go by position or by the key field names "
                    f"{[f.name for f in self.key_fields]}, got {sorted(unknown) or list(args)}",
                    model=self.name,
                    value=dict(named),
                )
            missing = [f.name for f in self.key_fields if f.name not in named]
            if missing:
                raise ValidationError(
                    f"{self.name}: missing key parts {missing}", model=self.name, field=missing[0]
                )
            return tuple(named[f.name] for f in self.key_fields)
        if len(args) != len(self.key_fields):
            raise ValidationError(
                f"{self.name}: expected {len(self.key_fields)} key part(s) "
                f"{[f.name for f in self.key_fields]}, got {len(args)}: {list(args)!r}",
                model=self.name,
                value=tuple(args),
            )
        return tuple(args)

    def key_text(self, parts: Sequence[Any]) -> str:
        """The key parts joined with ``:``, each checked; the fallback's record name."""
        if self._str_key and len(parts) == 1:
            part = parts[0]
            if type(part) is str and part and ":" not in part:
                return part
        texts = []
        for field, part in zip(self.key_fields, parts, strict=True):
            if part is None or not field.codec.check(part):
                raise ValidationError(
                    f"{self.name}.{field.name}: key part must be {field.codec.type_name}, "
                    f"got {part!r}",
                    model=self.name,
                    field=field.name,
                    value=part,
                )
            text = field.codec.encode(part)
            if isinstance(text, bytes):
                text = text.decode()
            if not text or ":" in text:
                raise ValidationError(
                    f"{self.name}.{field.name}: key part must be non-empty and "
                    f"without ':', got {part!r}",
                    model=self.name,
                    field=field.name,
                    value=part,
                )
            texts.append(text)
        return ":".join(texts)

    def redis_key(self, name: str) -> bytes:
        return (self._key_prefix + name).encode()

    def marker_key(self, name: str) -> bytes:
        return (self._marker_prefix + name).encode()

    def instance_key_text(self, entity: Any) -> str:
        return self.key_text([entity.__dict__[f.name] for f in self.key_fields])

    # -- instances ---------------------------------------------------------------

    def check_instance(self, entity: Any) -> None:
        if type(entity) is not self.model:
            raise ValidationError(
                f"{self.name}: expected a {self.name} instance, got {entity!r}",
                model=self.name,
                value=entity,
            )

    def encode_field(self, field: FieldInfo, value: Any) -> str | bytes:
        if not field.codec.check(value):
            raise self.mismatch(field, value)
        return field.codec.encode(value)

    def mismatch(self, field: FieldInfo, value: Any) -> ValidationError:
        return ValidationError(
            f"{self.name}.{field.name}: expected {field.codec.type_name}"
            f"{' or None' if field.codec.optional else ''}, got {value!r}",
            model=self.name,
            field=field.name,
            value=value,
        )

    def to_hash(self, entity: Any) -> dict[bytes, str | bytes]:
        """The hash fields of an entity; None values are left out (absent)."""
        values = entity.__dict__
        out: dict[bytes, str | bytes] = {}
        for field in self.fields:
            value = values[field.name]
            if value is None:
                if not field.codec.optional:
                    raise self.mismatch(field, value)
                continue
            out[field.raw_name] = self.encode_field(field, value)
        return out

    def build(self, values: dict[str, Any]) -> Any:
        """An instance from values already known to fit (decoded), skipping checks."""
        entity: Any = object.__new__(self.model)
        entity.__dict__.update(values)
        return entity

    def copy(self, entity: Any) -> Any:
        """A shallow copy, so a cached entity is never the caller's own object."""
        return self.build(dict(entity.__dict__))

    def from_hash(self, raw: Mapping[bytes, bytes]) -> Any:
        """Decode a whole Redis hash. Raises CorruptData on text that won't parse."""
        values: dict[str, Any] = {}
        for field in self.fields:
            text = raw.get(field.raw_name)
            if text is None:
                values[field.name] = self._absent(field)
                continue
            try:
                values[field.name] = field.codec.decode(text)
            except Exception as exc:
                raise self._unparsable(field, text) from exc
        return self.build(values)

    def _absent(self, field: FieldInfo) -> Any:
        """The value of a field a stored hash lacks: None, its default, or CorruptData."""
        if field.codec.optional:
            return None
        if field.has_default:
            return field.default_value()
        raise CorruptData(f"{self.name}.{field.name} is missing")

    def from_fields(
        self, fields: Sequence[FieldInfo], raw: Sequence[bytes | None], parts: Sequence[Any]
    ) -> Any:
        """Decode a partial read; fields not read take their defaults (None without one)."""
        values = self._partial_base(parts)
        for field, text in zip(fields, raw, strict=True):
            values[field.name] = None if text is None else self._decode(field, text)
        return self.build(values)

    def project(self, entity: Any, fields: Sequence[FieldInfo], parts: Sequence[Any]) -> Any:
        """A whole entity cut down to a partial read of ``fields``."""
        values = self._partial_base(parts)
        for field in fields:
            values[field.name] = entity.__dict__[field.name]
        return self.build(values)

    def _partial_base(self, parts: Sequence[Any]) -> dict[str, Any]:
        values = {field.name: field.default_value() for field in self.fields}
        for field, part in zip(self.key_fields, parts, strict=True):
            values[field.name] = part
        return values

    def _decode(self, field: FieldInfo, text: bytes) -> Any:
        try:
            return field.codec.decode(text)
        except Exception as exc:
            raise self._unparsable(field, text) from exc

    def _unparsable(self, field: FieldInfo, text: bytes) -> CorruptData:
        return CorruptData(f"{self.name}.{field.name}: cannot parse {text!r}")

    def select(self, names: Iterable[str]) -> tuple[FieldInfo, ...]:
        """The fields named in a ``fields=`` argument."""
        if isinstance(names, str):
            raise ValidationError(
                f"{self.name}: fields= takes a list of names, got {names!r}",
                model=self.name,
                value=names,
            )
        selected = []
        for name in names:
            field = self.by_name.get(name)
            if field is None:
                raise ValidationError(
                    f"{self.name}: no field {name!r}", model=self.name, field=name, value=name
                )
            selected.append(field)
        if not selected:
            raise ValidationError(f"{self.name}: fields= is empty", model=self.name, value=[])
        return tuple(selected)

    # -- sorted sets -------------------------------------------------------------

    def to_member(self, entity: Any) -> tuple[str, float]:
        """The member text and score of a sorted-set instance."""
        assert self.member is not None and self.score is not None
        member = entity.__dict__[self.member.name]
        score = entity.__dict__[self.score.name]
        if member is None:
            raise self.mismatch(self.member, member)
        if score is None or not self.score.codec.check(score):
            raise self.mismatch(self.score, score)
        text = self.encode_field(self.member, member)
        return (text.decode() if isinstance(text, bytes) else text), float(score)

    def from_member(self, parts: Sequence[Any], member: bytes, score: float) -> Any:
        assert self.member is not None and self.score is not None
        values = {field.name: part for field, part in zip(self.key_fields, parts, strict=True)}
        values[self.member.name] = self._decode(self.member, member)
        values[self.score.name] = score
        return self.build(values)

    def encode_members(self, members: Sequence[Any]) -> list[str]:
        assert self.member is not None
        encoded = []
        for member in members:
            text = self.encode_field(self.member, member)
            encoded.append(text.decode() if isinstance(text, bytes) else text)
        return encoded


def _converter(model: str, field: str, codec: Codec) -> Callable[[Any], Any]:
    check, normalize, optional = codec.check, codec.normalize, codec.optional
    expected = codec.type_name + (" or None" if optional else "")

    def convert(value: Any) -> Any:
        if value is None:
            if optional:
                return None
        elif check(value):
            return normalize(value) if normalize is not None else value
        raise ValidationError(
            f"{model}.{field}: expected {expected}, got {value!r}",
            model=model,
            field=field,
            value=value,
        )

    return convert


def _declared(cls: type, namespace: Mapping[str, Any]) -> dict[str, tuple[Any, FieldSpec]]:
    """The annotated attributes of the class body, with their specs."""
    own = namespace.get("__annotations__", {})
    try:
        hints = typing.get_type_hints(cls)
    except NameError as exc:
        raise ConfigurationError(
            f"{cls.__name__}: cannot resolve an annotation: {exc}", model=cls.__name__
        ) from exc
    declared: dict[str, tuple[Any, FieldSpec]] = {}
    for name in own:
        annotation = hints[name]
        if typing.get_origin(annotation) is typing.ClassVar:
            continue
        value = namespace.get(name, NO_DEFAULT)
        spec = value if isinstance(value, FieldSpec) else FieldSpec(FieldKind.FIELD, default=value)
        declared[name] = (annotation, spec)
    return declared


def _check_layout(name: str, declared: Mapping[str, tuple[Any, FieldSpec]]) -> StoreKind:
    def named(kind: FieldKind) -> list[str]:
        return [n for n, (_, spec) in declared.items() if spec.kind is kind]

    for field_name in declared:
        if field_name in RESERVED_NAMES or field_name.startswith("_"):
            raise ConfigurationError(
                f"{name}: field name {field_name!r} collides with the model API", model=name
            )
    if not named(FieldKind.KEY):
        raise ConfigurationError(f"{name}: a model needs at least one Key() field", model=name)
    members, scores = named(FieldKind.MEMBER), named(FieldKind.SCORE)
    if len(members) > 1 or len(scores) > 1:
        raise ConfigurationError(
            f"{name}: at most one SortedMember() and one Score(), got {members + scores}",
            model=name,
        )
    if bool(members) != bool(scores):
        raise ConfigurationError(
            f"{name}: SortedMember() and Score() go together, got only {members or scores}",
            model=name,
        )
    if members and named(FieldKind.FIELD):
        raise ConfigurationError(
            f"{name}: a sorted-set model holds Key(), SortedMember() and Score() only; "
            f"remove {named(FieldKind.FIELD)}",
            model=name,
        )
    return StoreKind.SORTED_SET if members else StoreKind.HASH


def _options(name: str, kind: StoreKind, given: Mapping[str, Any]) -> dict[str, Any]:
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
    max_size = given.get("max_size")
    if max_size is not None:
        if kind is not StoreKind.SORTED_SET:
            raise ConfigurationError(f"{name}.Meta.max_size is for sorted-set models", model=name)
        if not is_positive_int(max_size):
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
    kind = _check_layout(name, declared)
    settings = _options(name, kind, options)

    infos: list[FieldInfo] = []
    for field_name, (annotation, spec) in declared.items():
        codec = compile_codec(annotation, model=name, field=field_name)
        if spec.kind is FieldKind.SCORE and codec.category.value not in ("float", "int"):
            raise ConfigurationError(f"{name}.{field_name}: Score() must be float", model=name)
        if spec.kind in (FieldKind.KEY, FieldKind.MEMBER) and codec.category.value not in (
            "str",
            "int",
        ):
            raise ConfigurationError(
                f"{name}.{field_name}: {spec.kind.value}() must be str or int, "
                f"got {codec.type_name}",
                model=name,
            )
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
        kind=kind,
        key_name=key_name,
        expire_time=settings["expire_time"],
        max_size=settings["max_size"],
        fields=fields,
        key_fields=tuple(by_kind[FieldKind.KEY]),
        member=next(iter(by_kind[FieldKind.MEMBER]), None),
        score=next(iter(by_kind[FieldKind.SCORE]), None),
        by_name={f.name: f for f in fields},
        by_raw_name={f.raw_name: f for f in fields},
        key_prefix=f"{key_name}:",
        marker_prefix=f"{key_name}:not-found:",
        str_key=[(f.codec.category, f.codec.optional) for f in by_kind[FieldKind.KEY]]
        == [(Category.STR, False)],
    )


def build_meta(cls: type, namespace: Mapping[str, Any], options: type | None) -> ModelMeta:
    """Check a model declaration, compile its metadata, turn the class into an attrs class.

    Raises:
        ConfigurationError: the declaration is wrong; the message names the model.
    """
    given = {k: v for k, v in vars(options).items() if not k.startswith("__")} if options else {}
    meta = compile_meta(cls, _declared(cls, namespace), given)
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
    MODELS[meta.key_name] = meta
    return meta
