"""Keys: from a call's key parts to the fallback's record name and the Redis keys.

A record's name is its key parts as text joined with ``:``; its Redis key is
``<key_name>:<name>`` and its not-found marker ``<key_name>:not-found:<name>``
(dbdaora 0.27's layout).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dbdaora.exceptions import ValidationError
from dbdaora.fields import unencodable_note

if TYPE_CHECKING:
    from dbdaora.meta.field_info import FieldInfo


class KeyRules:
    """The key methods of ``ModelMeta``, over the attributes it declares."""

    name: str
    key_fields: tuple[FieldInfo, ...]
    _key_prefix: str
    _marker_prefix: str
    # One key field holding a plain str: a valid part is the record name as it is.
    _str_key: bool

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
            if type(part) is str and part and ":" not in part and part.isascii():
                return part
        texts = []
        for field, part in zip(self.key_fields, parts, strict=True):
            if part is None or not field.codec.check(part):
                raise ValidationError(
                    f"{self.name}.{field.name}: key part must be {field.codec.type_name}, "
                    f"got {part!r}{unencodable_note(part)}",
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
