"""dbdaora 0.27's repository and service API, as thin adapters over the declarative core.

Dataclass entities are compiled with the machinery a ``Model`` gets; every read
and write goes through a ``HashManager``, ``SortedSetManager``, ``GeoManager`` or
``FlagManager`` on a ``Session``.
"""

from dbdaora.legacy.data_sources import (
    DictFallbackDataSource,
    DictMemoryDataSource,
    make_aioredis_data_source,
    make_redis_data_source,
)
from dbdaora.legacy.entities import SortedSetEntity
from dbdaora.legacy.geo import (
    DatastoreGeoSpatialRepository,
    DatastoreGeoSpatialService,
    GeoSpatialEntity,
    GeoSpatialQuery,
    GeoSpatialRepository,
    GeoSpatialService,
    make_geospatial_service,
)
from dbdaora.legacy.queries import (
    BooleanQuery,
    BooleanQueryMany,
    HashQuery,
    HashQueryMany,
    SortedSetQuery,
    SortedSetQueryMany,
)
from dbdaora.legacy.repositories import (
    BooleanRepository,
    DatastoreBooleanRepository,
    HashRepository,
    Repository,
    SortedSetRepository,
)
from dbdaora.legacy.services import (
    BooleanService,
    CacheType,
    LegacyServiceOptions,
    Service,
    make_boolean_service,
    make_hash_service,
    make_sorted_set_service,
)

__all__ = [
    "BooleanQuery",
    "BooleanQueryMany",
    "BooleanRepository",
    "BooleanService",
    "CacheType",
    "DatastoreBooleanRepository",
    "DatastoreGeoSpatialRepository",
    "DatastoreGeoSpatialService",
    "DictFallbackDataSource",
    "DictMemoryDataSource",
    "GeoSpatialEntity",
    "GeoSpatialQuery",
    "GeoSpatialRepository",
    "GeoSpatialService",
    "HashQuery",
    "HashQueryMany",
    "HashRepository",
    "LegacyServiceOptions",
    "Repository",
    "Service",
    "SortedSetEntity",
    "SortedSetQuery",
    "SortedSetQueryMany",
    "SortedSetRepository",
    "make_aioredis_data_source",
    "make_boolean_service",
    "make_geospatial_service",
    "make_hash_service",
    "make_redis_data_source",
    "make_sorted_set_service",
]
