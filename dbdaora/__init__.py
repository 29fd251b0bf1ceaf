"""dbdaora: declare your data once; read it from Redis, keep it in a durable store."""

from dbdaora.exceptions import (
    BackendError,
    ConfigurationError,
    DBDaoraError,
    EntityNotFoundError,
    OutcomeUnknownError,
    UnknownFieldError,
    ValidationError,
)
from dbdaora.fields import Field, Flag, Key, Score, SortedMember
from dbdaora.legacy import (
    BooleanRepository,
    BooleanService,
    CacheType,
    DatastoreBooleanRepository,
    DictFallbackDataSource,
    DictMemoryDataSource,
    HashRepository,
    SortedSetEntity,
    SortedSetRepository,
    make_aioredis_data_source,
    make_boolean_service,
    make_hash_service,
    make_redis_data_source,
    make_sorted_set_service,
)
from dbdaora.model import FlagModel, Model, SortedSetModel
from dbdaora.session import Session
from dbdaora.session.tracing import set_tracer_provider
from dbdaora.settings import configure

__all__ = [
    "BackendError",
    "BooleanRepository",
    "BooleanService",
    "CacheType",
    "ConfigurationError",
    "DBDaoraError",
    "DatastoreBooleanRepository",
    "DictFallbackDataSource",
    "DictMemoryDataSource",
    "EntityNotFoundError",
    "Field",
    "Flag",
    "FlagModel",
    "HashRepository",
    "Key",
    "Model",
    "OutcomeUnknownError",
    "Score",
    "Session",
    "SortedMember",
    "SortedSetEntity",
    "SortedSetModel",
    "SortedSetRepository",
    "UnknownFieldError",
    "ValidationError",
    "configure",
    "make_aioredis_data_source",
    "make_boolean_service",
    "make_hash_service",
    "make_redis_data_source",
    "make_sorted_set_service",
    "set_tracer_provider",
]
