"""Records: an entity to and from the text a Redis hash, sorted-set member or flag holds.

Encoding checks every value against its field's codec and raises
``ValidationError``; decoding trusts values it built itself and raises
``CorruptData`` for stored text that does not parse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dbdaora.exceptions import ValidationError
from dbdaora.fields import mismatch_text

if TYPE_CHECKING:
    from dbdaora.meta.field_info import FieldInfo


FLAG_SET = b"1"
"""A flag model's Redis string while its flag is set (dbdaora 0.27's boolean layout)."""

FLAG_MISSING = b"0"
"""A flag model's Redis string for the remembered miss: the fallback has no record."""


class CorruptData(Exception):  # noqa: N818 - internal signal, never leaves the managers
    """Stored text that does not parse to its field's type."""


class RecordCodec:
    """The record methods of ``ModelMeta``, over the attributes it declares."""

    model: type
    name: str
    fields: tuple[FieldInfo, ...]
    key_fields: tuple[FieldInfo, ...]
    member: FieldInfo | None
    score: FieldInfo | None
    flag: FieldInfo | None
    by_name: Mapping[str, FieldInfo]

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
            f"{self.name}.{field.name}: {mismatch_text(field.codec, value)}",
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

    def from_hash(self, raw: Mapping[bytes, bytes], parts: Sequence[Any] | None) -> Any:
        """Decode a whole hash, read under the key ``parts`` (None: not a Redis read).

        Raises:
            CorruptData: text that won't parse, or key fields other than ``parts``
                (a hash written under another entity's key).
        """
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
        if parts is not None:
            for field, part in zip(self.key_fields, parts, strict=True):
                if values[field.name] != part:
                    raise CorruptData(
                        f"{self.name}.{field.name}: the hash under key {part!r} holds "
                        f"{values[field.name]!r}"
                    )
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

    # -- flags -------------------------------------------------------------------

    def check_flag(self, entity: Any) -> None:
        """Refuse an entity whose flag is not set: a flag model stores set flags only."""
        assert self.flag is not None
        value = entity.__dict__[self.flag.name]
        if value is not True:
            raise ValidationError(
                f"{self.name}.{self.flag.name}: a flag model stores set flags only; "
                f"add it with True (delete clears a flag), got {value!r}",
                model=self.name,
                field=self.flag.name,
                value=value,
            )

    def flag_entity(self, parts: Sequence[Any]) -> Any:
        """The entity of a set flag under the key ``parts``."""
        assert self.flag is not None
        values = {field.name: part for field, part in zip(self.key_fields, parts, strict=True)}
        values[self.flag.name] = True
        return self.build(values)

    def parts_of(self, name: str) -> tuple[Any, ...]:
        """The key parts of a record name (``key_text``'s inverse).

        Raises:
            CorruptData: the name does not hold this model's key parts.
        """
        texts = name.split(":")
        if len(texts) != len(self.key_fields):
            raise CorruptData(f"{self.name}: {name!r} is not a record name of this model")
        return tuple(
            self._decode(field, text.encode())
            for field, text in zip(self.key_fields, texts, strict=True)
        )
