"""Settings: ``configure(...)`` in code, or a module named by ``DBDAORA_SETTINGS``.

The module holds upper-case names (``MEMORY``, ``FALLBACK``, ``EXPIRE_TIME``,
``CACHE``, ``BREAKER``, ``MEMORY_TIMEOUT``, ``AUTOPIPELINE``, ``REPAIR_INTERVAL``);
values given to ``configure`` win over it. Nothing configured: both stores are
``memory://``, the embedded default that needs no server.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, Literal

import attrs

from dbdaora.backends.urls import check_url
from dbdaora.exceptions import ConfigurationError
from dbdaora.validators import is_positive_int, is_positive_number

ENVIRONMENT_VARIABLE = "DBDAORA_SETTINGS"

Policy = Literal["lru", "lfu"]


def _check_expire_time(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not is_positive_int(value):
        raise ConfigurationError(f"expire_time must be a positive int or None, got {value!r}")


def _check_url(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or "://" not in value:
        raise ConfigurationError(f"{attribute.name} must be a URL, got {value!r}")
    check_url(value, attribute.name)


def _options(name: str, cls: type[Any], given: Any) -> Any:
    """Turn an options dict into ``cls``, naming what is unknown or wrong."""
    if given is None or isinstance(given, cls):
        return given
    if not isinstance(given, dict):
        raise ConfigurationError(f"{name} must be a dict or None, got {given!r}")
    known = [field.name for field in attrs.fields(cls)]
    unknown = set(given) - set(known)
    if unknown:
        raise ConfigurationError(f"{name}: unknown option(s) {sorted(unknown)}; known: {known}")
    return cls(**given)


def _positive(check: Any, what: str) -> Any:
    def validate(instance: Any, attribute: Any, value: Any) -> None:
        if not check(value):
            option = type(instance).__name__.removesuffix("Options").lower()
            raise ConfigurationError(f"{option}: {attribute.name} must be {what}, got {value!r}")

    return validate


@attrs.frozen
class CacheOptions:
    """The in-process cache: entries live ``ttl`` seconds (None: until evicted), at most
    ``max_size`` of them; a full cache evicts by ``policy``, ``"lru"`` or ``"lfu"``.

    ``tracking``: Redis tells the cache which keys changed (client tracking), so
    that it drops them at once, whoever wrote them. None (the default) tracks
    where the Redis store can, True requires it (``ConfigurationError`` where it
    cannot), False keeps the cache coherent only with this session's writes.
    """

    ttl: float | None = attrs.field(
        default=5.0,
        validator=_positive(
            lambda value: value is None or is_positive_number(value), "a positive number"
        ),
    )
    max_size: int = attrs.field(
        default=10_000, validator=_positive(is_positive_int, "a positive int")
    )
    policy: Policy = attrs.field(
        default="lru", validator=_positive(lambda value: value in ("lru", "lfu"), "'lru' or 'lfu'")
    )
    tracking: bool | None = attrs.field(
        default=None,
        validator=_positive(
            lambda value: value is None or type(value) is bool, "None, True or False"
        ),
    )


@attrs.frozen
class BreakerOptions:
    """A circuit breaker opens after ``fail_max`` failures in a row.

    While open it pings its store every ``probe_interval`` seconds and closes at
    the first answer; ``reset_timeout`` seconds after opening without one, it
    lets one live call try (and opens again if that fails).
    """

    fail_max: int = attrs.field(default=10, validator=_positive(is_positive_int, "a positive int"))
    reset_timeout: float = attrs.field(
        default=10.0, validator=_positive(is_positive_number, "a positive number")
    )
    probe_interval: float = attrs.field(
        default=0.5, validator=_positive(is_positive_number, "a positive number")
    )


def _cache_options(value: Any) -> CacheOptions | None:
    options: CacheOptions | None = _options("cache", CacheOptions, value)
    return options


def _breaker_options(value: Any) -> BreakerOptions | None:
    options: BreakerOptions | None = _options("breaker", BreakerOptions, value)
    return options


def _check_timeout(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not is_positive_number(value):
        raise ConfigurationError(f"memory_timeout must be a positive number or None, got {value!r}")


def _check_repair_interval(instance: Any, attribute: Any, value: Any) -> None:
    if not is_positive_number(value):
        raise ConfigurationError(f"repair_interval must be a positive number, got {value!r}")


@attrs.frozen
class Settings:
    """The values sessions are built from.

    Attributes:
        memory: URL of the Redis side (``memory://``, ``redis://host:port/db``, ...).
        fallback: URL of the durable store (``memory://``, ...).
        expire_time: seconds a Redis copy lives; None keeps it until evicted.
        cache: the session's in-process cache, None for none (the default).
        breaker: the circuit breakers in front of each store, None for none.
        memory_timeout: seconds each Redis call may take, None for no bound.
        autopipeline: send the Redis commands of one event-loop iteration together.
        repair_interval: seconds between a session's checks of the fallback's repair
            records (Redis keys a write could not update); the bound on how long any
            process may serve such a stale Redis copy once Redis answers.
    """

    memory: str = attrs.field(default="memory://", validator=_check_url)
    fallback: str = attrs.field(default="memory://", validator=_check_url)
    expire_time: int | None = attrs.field(default=3600, validator=_check_expire_time)
    cache: CacheOptions | None = attrs.field(default=None, converter=_cache_options)
    breaker: BreakerOptions | None = attrs.field(factory=BreakerOptions, converter=_breaker_options)
    memory_timeout: float | None = attrs.field(default=1.0, validator=_check_timeout)
    autopipeline: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    repair_interval: float = attrs.field(default=2.0, validator=_check_repair_interval)


_NAMES = {field.name.upper(): field.name for field in attrs.fields(Settings)}
_overrides: dict[str, Any] = {}
_current: Settings | None = None
# Called whenever the settings change: what was built from the old ones (the
# default session) forgets it. This module imports nothing that subscribes.
_on_change: list[Callable[[], None]] = []


def on_change(callback: Callable[[], None]) -> None:
    """Have ``callback()`` called each time ``configure`` or ``reset`` changes the settings."""
    _on_change.append(callback)


def _changed() -> None:
    global _current
    _current = None
    for callback in _on_change:
        callback()


def _from_module() -> dict[str, Any]:
    module_name = os.environ.get(ENVIRONMENT_VARIABLE)
    if not module_name:
        return {}
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{ENVIRONMENT_VARIABLE}={module_name!r} cannot be imported: {exc}"
        ) from exc
    return {attr: getattr(module, name) for name, attr in _NAMES.items() if hasattr(module, name)}


def current() -> Settings:
    """The settings in force: the module's, then what ``configure`` gave."""
    global _current
    if _current is None:
        _current = Settings(**{**_from_module(), **_overrides})
    return _current


def configure(**options: Any) -> None:
    """Set options for sessions made from now on, and for ``Model.objects``.

    Raises:
        ConfigurationError: an unknown option or a bad value.
    """
    unknown = set(options) - set(_NAMES.values())
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {sorted(unknown)}; known: {sorted(_NAMES.values())}"
        )
    Settings(**{**_from_module(), **_overrides, **options})
    _overrides.update(options)
    _changed()


def reset() -> None:
    """Forget everything ``configure`` set (tests use it between cases)."""
    _overrides.clear()
    _changed()
