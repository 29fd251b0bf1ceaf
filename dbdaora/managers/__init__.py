"""The managers: ``Model.objects`` for each Redis data type.

Each data type has one module here, its manager built on ``base.Manager`` and
the read-through steps of ``read_through``. ``MANAGERS`` says which manager
serves which ``StoreKind``: a new data type adds its module and one row.
"""

from __future__ import annotations

from typing import Any

from dbdaora.managers.base import Manager
from dbdaora.managers.geo import GeoManager
from dbdaora.managers.hashes import HashManager
from dbdaora.managers.sorted_sets import SortedSetManager
from dbdaora.meta import ModelMeta, StoreKind

MANAGERS: dict[StoreKind, type[Manager[Any]]] = {
    StoreKind.HASH: HashManager,
    StoreKind.SORTED_SET: SortedSetManager,
    StoreKind.GEOSPATIAL: GeoManager,
}


def manager_class(meta: ModelMeta) -> type[Manager[Any]]:
    """The manager class of the model's data type."""
    return MANAGERS[meta.kind]


__all__ = [
    "MANAGERS",
    "GeoManager",
    "HashManager",
    "Manager",
    "SortedSetManager",
    "manager_class",
]
