"""0.27's service layer: ``make_hash_service``, ``make_sorted_set_service`` and
``make_boolean_service``.

A service is a repository whose session has a cache and circuit breakers: the
cache from ``cache_type``/``cache_ttl``/``cache_max_size``, the breakers from
``cb_failure_threshold``/``cb_recovery_timeout``. When Redis fails or its breaker
is open, the session answers from the fallback. 0.27's other factory arguments
(``LegacyServiceOptions``) are checked and change nothing.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypedDict, TypeVar, Unpack

from dbdaora.backends.fallback.protocol import FallbackStore
from dbdaora.backends.redis.protocol import RedisSide
from dbdaora.exceptions import ConfigurationError
from dbdaora.legacy.repositories import (
    BooleanRepository,
    HashRepository,
    Repository,
    SortedSetRepository,
)

E = TypeVar("E")
R = TypeVar("R", bound=Repository[Any, Any])
S = TypeVar("S", bound="Service[Any]")


class CacheType(enum.Enum):
    """The service cache's eviction, as 0.27 named it.

    ``TTL``: least recently used, entries live ``cache_ttl`` seconds (required).
    ``TTLDAORA``: 0.27's own TTL cache, here the same as ``TTL``: an entry is
    never served after its ``cache_ttl``, and a full cache evicts the least
    recently used entry (0.27 cleared 10% of it, and served an expired entry once).
    ``LRU``: least recently used; ``LFU``: least frequently used; with these,
    entries live until evicted unless ``cache_ttl`` is given.
    """

    TTL = "ttl"
    TTLDAORA = "ttldaora"
    LRU = "lru"
    LFU = "lfu"


class Service(Generic[E]):
    """Reads and writes through a repository whose session caches and breaks.

    ``get_one`` and ``exists`` take the key as ``id`` (the repository's ``id_name``
    attribute) or by key attribute, plus the repository's query options
    (``fields=``, or the sorted-set ones, and ``memory=False`` to read the
    fallback alone).
    """

    def __init__(self, repository: Repository[E, Any]) -> None:
        self.repository: Any = repository

    def _named(self, entity_id: Any, filters: dict[str, Any]) -> dict[str, Any]:
        if entity_id is not None:
            filters[self.repository.id_name] = entity_id
        return filters

    async def get_one(self, id: Any = None, **filters: Any) -> E:  # noqa: A002 - 0.27's name
        """The entity; raises ``EntityNotFoundError`` where there is none."""
        entity: E = await self.repository.query(**self._named(id, filters)).entity
        return entity

    def get_many(self, *ids: Any, **filters: Any) -> AsyncIterator[E]:
        """The entities found among ``ids`` (values, or tuples of key parts), in order."""
        entities: AsyncIterator[E] = self.repository.query(many=list(ids), **filters).entities
        return entities

    async def add(
        self, entity: E, *entities: E, memory: bool = True, memory_always: bool = True
    ) -> None:
        """Write entities: the fallback first, then Redis, whatever ``memory=`` and
        ``memory_always=`` say (see ``Repository.add``)."""
        await self.repository.add(entity, *entities)

    async def delete(self, entity_id: Any = None, **filters: Any) -> None:
        await self.repository.query(**self._named(entity_id, filters)).delete

    async def exists(self, id: Any = None, **filters: Any) -> bool:  # noqa: A002 - 0.27's name
        found: bool = await self.repository.query(**self._named(id, filters)).exists
        return found

    def stats(self) -> dict[str, Any]:
        """The session's counters and breaker states (``Session.stats()``)."""
        stats: dict[str, Any] = self.repository.session.stats()
        return stats

    async def shutdown(self) -> None:
        """Close the repository's connections."""
        await self.repository.close()


class BooleanService(Service[Any]):
    """0.27's boolean service: ``get_one`` answers the id of a set flag (or raises
    ``EntityNotFoundError``), ``get_many`` the ids of the set ones, ``exists`` a bool."""


def _cache_options(
    cache_type: CacheType | None, ttl: float | None, max_size: int | None
) -> dict[str, Any] | None:
    if cache_type is None:
        return None
    if not isinstance(cache_type, CacheType):
        raise ConfigurationError(f"cache_type must be a CacheType, got {cache_type!r}")
    if max_size is None:
        raise ConfigurationError(f"cache_type={cache_type.name} needs cache_max_size")
    if cache_type in (CacheType.TTL, CacheType.TTLDAORA) and ttl is None:
        raise ConfigurationError(f"cache_type={cache_type.name} needs cache_ttl")
    policy = "lfu" if cache_type is CacheType.LFU else "lru"
    # 0.27's services kept entries for their TTL, whoever wrote: no tracking.
    return {"ttl": ttl, "max_size": max_size, "policy": policy, "tracking": False}


class LegacyServiceOptions(TypedDict, total=False):
    """0.27's service factory arguments that change nothing here, checked all the same.

    The session's breakers guard every Redis call, adds and deletes included, and
    count only store failures (``RedisUnavailableError``), so the exception
    types and the add/delete switches have nothing left to select; the session
    logs through the ``dbdaora`` loggers, so ``logger`` is not used.

    Keys:
        cb_expected_exception: an exception class, or None.
        cb_expected_fallback_exception: an exception class, or None.
        logger: a ``logging.Logger`` (or any object with a ``warning`` method, as
            0.27 called), or None.
        has_add_circuit_breaker: a bool.
        has_delete_circuit_breaker: a bool.
    """

    cb_expected_exception: type[BaseException] | None
    cb_expected_fallback_exception: type[BaseException] | None
    logger: logging.Logger | logging.LoggerAdapter[Any] | None
    has_add_circuit_breaker: bool
    has_delete_circuit_breaker: bool


def check_legacy_options(options: dict[str, Any]) -> None:
    """Check 0.27's service arguments (``LegacyServiceOptions``).

    Raises:
        ConfigurationError: an unknown argument, or a value of the wrong kind, named.
    """
    for name, value in options.items():
        if name in ("cb_expected_exception", "cb_expected_fallback_exception"):
            good = value is None or (isinstance(value, type) and issubclass(value, BaseException))
            kind = "an exception class or None"
        elif name == "logger":
            good = value is None or callable(getattr(value, "warning", None))
            kind = "a logging.Logger or None"
        elif name in ("has_add_circuit_breaker", "has_delete_circuit_breaker"):
            good = isinstance(value, bool)
            kind = "a bool"
        else:
            known = ", ".join(LegacyServiceOptions.__annotations__)
            raise ConfigurationError(f"unknown service argument {name!r}; 0.27's are: {known}")
        if not good:
            raise ConfigurationError(f"{name} must be {kind}, got {value!r}")


def _breaker_options(
    failure_threshold: int | None, recovery_timeout: float | None
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if failure_threshold is not None:
        # 0.27 fell back at the first failure with a threshold of 0; so does 1 here.
        options["fail_max"] = max(failure_threshold, 1)
    if recovery_timeout is not None:
        options["reset_timeout"] = recovery_timeout
    return options


async def _build(
    kind: type[Repository[Any, Any]],
    repository_cls: type[R],
    memory_data_source_factory: Callable[[], Awaitable[RedisSide | str]],
    fallback_data_source_factory: Callable[[], Awaitable[FallbackStore | str]],
    repository_expire_time: int | None,
    cache_type: CacheType | None,
    cache_ttl: float | None,
    cache_max_size: int | None,
    cb_failure_threshold: int | None,
    cb_recovery_timeout: float | None,
    repository_timeout: float | None,
    service_cls: type[S],
    legacy_options: dict[str, Any],
) -> S:
    if not (isinstance(repository_cls, type) and issubclass(repository_cls, kind)):
        raise ConfigurationError(f"expected a {kind.__name__} subclass, got {repository_cls!r}")
    check_legacy_options(legacy_options)
    cache = _cache_options(cache_type, cache_ttl, cache_max_size)
    breaker = _breaker_options(cb_failure_threshold, cb_recovery_timeout)
    repository = repository_cls(
        memory_data_source=await memory_data_source_factory(),
        fallback_data_source=await fallback_data_source_factory(),
        expire_time=repository_expire_time,
        timeout=repository_timeout,
        cache=cache,
        breaker=breaker,
    )
    return service_cls(repository)


async def make_hash_service(
    repository_cls: type[HashRepository[Any, Any]],
    memory_data_source_factory: Callable[[], Awaitable[RedisSide | str]],
    fallback_data_source_factory: Callable[[], Awaitable[FallbackStore | str]],
    repository_expire_time: int | None,
    cache_type: CacheType | None = None,
    cache_ttl: float | None = None,
    cache_max_size: int | None = None,
    cb_failure_threshold: int | None = None,
    cb_recovery_timeout: float | None = None,
    repository_timeout: float | None = 1.0,
    **options: Unpack[LegacyServiceOptions],
) -> Service[Any]:
    """A service over a ``HashRepository`` subclass; the factories are awaited once.

    ``options`` are 0.27's other arguments (``LegacyServiceOptions``): checked,
    and without effect.

    Raises:
        ConfigurationError: a bad option, as the cache's or breaker's settings say,
            or a bad 0.27 argument, named.
    """
    return await _build(
        HashRepository,
        repository_cls,
        memory_data_source_factory,
        fallback_data_source_factory,
        repository_expire_time,
        cache_type,
        cache_ttl,
        cache_max_size,
        cb_failure_threshold,
        cb_recovery_timeout,
        repository_timeout,
        Service,
        dict(options),
    )


async def make_sorted_set_service(
    repository_cls: type[SortedSetRepository[Any, Any]],
    memory_data_source_factory: Callable[[], Awaitable[RedisSide | str]],
    fallback_data_source_factory: Callable[[], Awaitable[FallbackStore | str]],
    repository_expire_time: int | None,
    cache_type: CacheType | None = None,
    cache_ttl: float | None = None,
    cache_max_size: int | None = None,
    cb_failure_threshold: int | None = None,
    cb_recovery_timeout: float | None = None,
    repository_timeout: float | None = 1.0,
    **options: Unpack[LegacyServiceOptions],
) -> Service[Any]:
    """A service over a ``SortedSetRepository`` subclass (see ``make_hash_service``)."""
    return await _build(
        SortedSetRepository,
        repository_cls,
        memory_data_source_factory,
        fallback_data_source_factory,
        repository_expire_time,
        cache_type,
        cache_ttl,
        cache_max_size,
        cb_failure_threshold,
        cb_recovery_timeout,
        repository_timeout,
        Service,
        dict(options),
    )


async def make_boolean_service(
    repository_cls: type[BooleanRepository[Any, Any]],
    memory_data_source_factory: Callable[[], Awaitable[RedisSide | str]],
    fallback_data_source_factory: Callable[[], Awaitable[FallbackStore | str]],
    repository_expire_time: int | None,
    cache_type: CacheType | None = None,
    cache_ttl: float | None = None,
    cache_max_size: int | None = None,
    cb_failure_threshold: int | None = None,
    cb_recovery_timeout: float | None = None,
    repository_timeout: float | None = 1.0,
    **options: Unpack[LegacyServiceOptions],
) -> BooleanService:
    """A ``BooleanService`` over a ``BooleanRepository`` subclass (see ``make_hash_service``)."""
    return await _build(
        BooleanRepository,
        repository_cls,
        memory_data_source_factory,
        fallback_data_source_factory,
        repository_expire_time,
        cache_type,
        cache_ttl,
        cache_max_size,
        cb_failure_threshold,
        cb_recovery_timeout,
        repository_timeout,
        BooleanService,
        dict(options),
    )
