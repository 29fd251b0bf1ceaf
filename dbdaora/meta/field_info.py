"""``FieldInfo``: one declared attribute of a model, compiled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from dbdaora.fields import Codec, FieldKind
from dbdaora.fields.spec import NO_DEFAULT


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
