"""Settings: ``configure(...)`` in code, or a module named by ``DBDAORA_SETTINGS``.

The module holds upper-case names (``MEMORY``, ``FALLBACK``, ``EXPIRE_TIME``);
values given to ``configure`` win over it. Nothing configured: both stores are
``memory://``, the embedded default that needs no server.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import attrs

from dbdaora.exceptions import ConfigurationError
from dbdaora.meta import is_positive_int

ENVIRONMENT_VARIABLE = "DBDAORA_SETTINGS"


def _check_expire_time(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not is_positive_int(value):
        raise ConfigurationError(f"expire_time must be a positive int or None, got {value!r}")


def _check_url(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or "://" not in value:
        raise ConfigurationError(f"{attribute.name} must be a URL, got {value!r}")


@attrs.frozen
class Settings:
    """The values sessions are built from.

    Attributes:
        memory: URL of the Redis side (``memory://``, ``redis://host:port/db``, ...).
        fallback: URL of the durable store (``memory://``, ...).
        expire_time: seconds a Redis copy lives; None keeps it until evicted.
    """

    memory: str = attrs.field(default="memory://", validator=_check_url)
    fallback: str = attrs.field(default="memory://", validator=_check_url)
    expire_time: int | None = attrs.field(default=3600, validator=_check_expire_time)


_NAMES = {field.name.upper(): field.name for field in attrs.fields(Settings)}
_overrides: dict[str, Any] = {}
_current: Settings | None = None


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
    global _current
    unknown = set(options) - set(_NAMES.values())
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {sorted(unknown)}; known: {sorted(_NAMES.values())}"
        )
    Settings(**{**_from_module(), **_overrides, **options})
    _overrides.update(options)
    _current = None
    from dbdaora import session

    session.reset_default()


def reset() -> None:
    """Forget everything ``configure`` set (tests use it between cases)."""
    global _current
    _overrides.clear()
    _current = None
    from dbdaora import session

    session.reset_default()
