"""dbdaora: declare your data once; read it from Redis, keep it in a durable store."""

from dbdaora.exceptions import (
    BackendError,
    ConfigurationError,
    DBDaoraError,
    EntityNotFoundError,
    ValidationError,
)
from dbdaora.fields import Field, Key, Score, SortedMember
from dbdaora.model import Model
from dbdaora.session import Session
from dbdaora.settings import configure

__all__ = [
    "BackendError",
    "ConfigurationError",
    "DBDaoraError",
    "EntityNotFoundError",
    "Field",
    "Key",
    "Model",
    "Score",
    "Session",
    "SortedMember",
    "ValidationError",
    "configure",
]
