"""A model's metadata: declarations checked and compiled once, at class creation.

``options`` checks a declaration and builds ``ModelMeta`` (``info``), whose key
methods live in ``keys`` and whose record encoding lives in ``records``;
``registry`` lists every declared model.
"""

from dbdaora.meta.field_info import FieldInfo
from dbdaora.meta.info import UNSET, ModelMeta, StoreKind, Unset
from dbdaora.meta.options import compile_meta, declared_fields
from dbdaora.meta.records import CorruptData
from dbdaora.meta.registry import MODELS, key_prefixes, register

__all__ = [
    "MODELS",
    "UNSET",
    "CorruptData",
    "FieldInfo",
    "ModelMeta",
    "StoreKind",
    "Unset",
    "compile_meta",
    "declared_fields",
    "key_prefixes",
    "register",
]
