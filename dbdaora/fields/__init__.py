"""Field descriptors and their value codecs."""

from dbdaora.fields.codecs import Category, Codec, compile_codec, mismatch_text, unencodable_note
from dbdaora.fields.geo import GeoMember, GeoPoint, Latitude, Longitude
from dbdaora.fields.spec import Field, FieldKind, FieldSpec, Key, Score, SortedMember

__all__ = [
    "Category",
    "Codec",
    "Field",
    "FieldKind",
    "FieldSpec",
    "GeoMember",
    "GeoPoint",
    "Key",
    "Latitude",
    "Longitude",
    "Score",
    "SortedMember",
    "compile_codec",
    "mismatch_text",
    "unencodable_note",
]
