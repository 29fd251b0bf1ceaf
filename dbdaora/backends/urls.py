"""The URL scheme table: which store a URL opens, imported only when a URL asks for it.

The module each scheme names is imported by name (``"module:Class"``), so a
driver is needed only where its scheme is used, and a missing one is a
``ConfigurationError`` that names the extra to install.
"""

from __future__ import annotations

import importlib
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dbdaora.backends.fallback.protocol import FallbackStore
from dbdaora.backends.redis.protocol import RedisSide
from dbdaora.exceptions import ConfigurationError

# scheme -> ("module:attribute", extra that installs its driver)
# The Redis side's URLs are given as ``memory=``: the name settings and sessions use.
REDIS_SCHEMES: dict[str, tuple[str, str | None]] = {
    "memory": ("dbdaora.backends.redis.inprocess:InProcessRedis", None),
    "redis": ("dbdaora.backends.redis.single:RedisStore", "redis"),
    "rediss": ("dbdaora.backends.redis.single:RedisStore", "redis"),
    "unix": ("dbdaora.backends.redis.single:RedisStore", "redis"),
    "redis+cluster": ("dbdaora.backends.redis.cluster:ClusterStore", "redis"),
    "rediss+cluster": ("dbdaora.backends.redis.cluster:ClusterStore", "redis"),
    "redis+sentinel": ("dbdaora.backends.redis.sentinel:SentinelStore", "redis"),
    "rediss+sentinel": ("dbdaora.backends.redis.sentinel:SentinelStore", "redis"),
    "redis+shards": ("dbdaora.backends.redis.shards:ShardedStore", "redis"),
    "rediss+shards": ("dbdaora.backends.redis.shards:ShardedStore", "redis"),
}
FALLBACK_SCHEMES: dict[str, tuple[str, str | None]] = {
    "memory": ("dbdaora.backends.fallback.dict:DictFallback", None),
    "datastore": ("dbdaora.backends.fallback.datastore.store:DatastoreFallback", "datastore"),
    "sqlite+aiosqlite": ("dbdaora.backends.fallback.sql.store:SQLFallback", "sql"),
    "postgresql+asyncpg": ("dbdaora.backends.fallback.sql.store:SQLFallback", "sql"),
}


_QUERY_PASSWORD = re.compile(r"((?:^|&)[^=&]*password=)[^&]*")


def mask_url(url: str) -> str:
    """The URL with its passwords replaced by ``***``, fit for errors and logs: the
    userinfo's and any query option named ``*password`` (``sentinel_password``).

    Raises:
        ConfigurationError: the URL does not parse.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError as exc:
        raise ConfigurationError(f"malformed URL: {exc}") from exc
    query = _QUERY_PASSWORD.sub(r"\1***", parts.query)
    if password is None:
        return urlunsplit(parts._replace(query=query)) if query != parts.query else url
    user = parts.username or ""
    # The hosts as written: a cluster URL lists several, which urlsplit's port cannot parse.
    hosts = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}", query=query))


SIDES = {
    "memory": (REDIS_SCHEMES, "memory (Redis-side)"),
    "fallback": (FALLBACK_SCHEMES, "fallback"),
}


def check_url(url: str, side: str) -> None:
    """Refuse, before any I/O, a ``memory`` or ``fallback`` URL that no store opens.

    Raises:
        ConfigurationError: an unknown scheme, or a ``redis://`` database that is no
            number; the message shows the URL, its password masked.
    """
    schemes, label = SIDES[side]
    masked = mask_url(url)
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ConfigurationError(
            f"no {label} backend for {masked!r}; known schemes: {sorted(schemes)}"
        )
    database = parts.path.strip("/")
    numbered = ("redis", "rediss", "redis+shards", "rediss+shards")
    if parts.scheme in numbered and database and not database.isdigit():
        raise ConfigurationError(
            f"{masked!r}: the database (the path) must be a number, got {database!r}"
        )


def _load(url: str, side: str, **options: Any) -> Any:
    check_url(url, side)
    masked = mask_url(url)
    schemes, _ = SIDES[side]
    target, extra = schemes[urlsplit(url).scheme]
    module_name, attribute = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{masked!r} needs a driver: pip install 'dbdaora[{extra}]' ({exc})"
        ) from exc
    return getattr(module, attribute)(url, **options)


def open_redis_side(url: str, *, autopipeline: bool = True) -> RedisSide:
    """The Redis-side store for ``url`` (``memory://``, ``redis://``, ``redis+cluster://``...).

    ``autopipeline`` batches the commands of one event-loop iteration into one
    round trip, where the store talks to a server.
    """
    store: RedisSide = _load(url, "memory", autopipeline=autopipeline)
    return store


def open_fallback(url: str) -> FallbackStore:
    """The fallback store for ``url`` (``memory://``, ``datastore://``, SQLAlchemy URLs)."""
    store: FallbackStore = _load(url, "fallback")
    return store
