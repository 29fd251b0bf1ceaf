"""Backends, chosen by URL scheme and imported only when a URL asks for them."""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dbdaora.backends.base import FallbackStore, MemoryStore
from dbdaora.exceptions import ConfigurationError

# scheme -> ("module:attribute", extra that installs its driver)
MEMORY_SCHEMES: dict[str, tuple[str, str | None]] = {
    "memory": ("dbdaora.backends.memory:MemoryStore", None),
    "redis": ("dbdaora.backends.redis:RedisStore", "redis"),
    "rediss": ("dbdaora.backends.redis:RedisStore", "redis"),
    "unix": ("dbdaora.backends.redis:RedisStore", "redis"),
    "redis+cluster": ("dbdaora.backends.cluster:ClusterStore", "redis"),
    "rediss+cluster": ("dbdaora.backends.cluster:ClusterStore", "redis"),
}
FALLBACK_SCHEMES: dict[str, tuple[str, str | None]] = {
    "memory": ("dbdaora.backends.memory:DictFallback", None),
    "datastore": ("dbdaora.backends.datastore:DatastoreFallback", "datastore"),
    "sqlite+aiosqlite": ("dbdaora.backends.sql:SQLFallback", "sql"),
    "postgresql+asyncpg": ("dbdaora.backends.sql:SQLFallback", "sql"),
}

__all__ = ["FallbackStore", "MemoryStore", "mask_url", "open_fallback", "open_memory"]


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, fit for errors and logs.

    Raises:
        ConfigurationError: the URL does not parse.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError as exc:
        raise ConfigurationError(f"malformed URL: {exc}") from exc
    if password is None:
        return url
    user = parts.username or ""
    # The hosts as written: a cluster URL lists several, which urlsplit's port cannot parse.
    hosts = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))


def _load(url: str, schemes: dict[str, tuple[str, str | None]], side: str, **options: Any) -> Any:
    masked = mask_url(url)
    scheme = urlsplit(url).scheme
    if scheme not in schemes:
        raise ConfigurationError(
            f"no {side} backend for {masked!r}; known schemes: {sorted(schemes)}"
        )
    target, extra = schemes[scheme]
    module_name, attribute = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{masked!r} needs a driver: pip install 'dbdaora[{extra}]' ({exc})"
        ) from exc
    return getattr(module, attribute)(url, **options)


def open_memory(url: str, *, autopipeline: bool = True) -> MemoryStore:
    """The Redis-side store for ``url`` (``memory://``, ``redis://``, ``rediss://``).

    ``autopipeline`` batches the commands of one event-loop iteration into one
    round trip, where the store talks to a server.
    """
    store: MemoryStore = _load(
        url, MEMORY_SCHEMES, "memory (Redis-side)", autopipeline=autopipeline
    )
    return store


def open_fallback(url: str) -> FallbackStore:
    """The fallback store for ``url`` (``memory://``, ``datastore://``, SQLAlchemy URLs)."""
    store: FallbackStore = _load(url, FALLBACK_SCHEMES, "fallback")
    return store
