"""The field descriptors a model declares: Key(), Field(), SortedMember(), Score(),
and a geospatial model's GeoMember(), Latitude(), Longitude() (``fields.geo``)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import attrs


class FieldKind(enum.Enum):
    KEY = "Key"
    FIELD = "Field"
    MEMBER = "SortedMember"
    SCORE = "Score"
    GEO_MEMBER = "GeoMember"
    LATITUDE = "Latitude"
    LONGITUDE = "Longitude"


class _NoDefault(enum.Enum):
    TOKEN = 0


NO_DEFAULT: Any = _NoDefault.TOKEN


@attrs.frozen
class FieldSpec:
    """What a declaration says about one attribute, before the model is built."""

    kind: FieldKind
    default: Any = NO_DEFAULT
    factory: Callable[[], Any] | None = None
    index: bool = False


# The declaration functions return Any so that ``id: str = Key()`` type-checks,
# the way ``dataclasses.field`` and ``attrs.field`` do.


def Key() -> Any:  # noqa: N802 - declarations read like types, as attrs.Factory does
    """A key part. Several ``Key()`` fields form a composite key, in declaration order."""
    return FieldSpec(FieldKind.KEY)


def Field(  # noqa: N802
    *,
    default: Any = NO_DEFAULT,
    factory: Callable[[], Any] | None = None,
    index: bool = False,
) -> Any:
    """A stored attribute of a hash model.

    Args:
        default: value taken when the constructor or a partial read leaves it out.
        factory: called for a fresh default (for lists and dicts).
        index: ask fallbacks that index selectively (Datastore) to index it.
    """
    if default is not NO_DEFAULT and factory is not None:
        raise TypeError("Field() takes default or factory, not both")
    return FieldSpec(FieldKind.FIELD, default=default, factory=factory, index=index)


def SortedMember() -> Any:  # noqa: N802
    """The member of a sorted-set model: one instance is one member of the set."""
    return FieldSpec(FieldKind.MEMBER)


def Score() -> Any:  # noqa: N802
    """The score of a sorted-set model's member."""
    return FieldSpec(FieldKind.SCORE)
