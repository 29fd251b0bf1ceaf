"""OpenTelemetry spans (the ``otel`` extra), free while nobody collects them.

Each public operation of a manager (``get``, ``get_many``, ``add``, ``delete``,
``exists``, ``range``...) makes a span ``dbdaora.<operation> <Model>``, and each
fallback call under it a child span ``dbdaora.fallback.<call> <Model>``, with
the database attributes of OpenTelemetry's semantic conventions (``db.system``,
``db.operation.name``, ``server.address``, ``server.port``, ``db.namespace``)
and dbdaora's own (``dbdaora.cache_hit``, ``dbdaora.fallback_read``, the
breakers' states). ``Manager`` wraps its operations with ``operation`` and the
guard its fallback calls with ``fallback_call``: nothing else knows of tracing
but the two places that note a cache hit and a fallback read.

Off, a wrapped call is one plain function call more: ``current()`` answers None
and the wrapper hands back the operation's own coroutine, no frame added. It is
off without opentelemetry-api, and while no tracer provider is set: neither one
given to ``set_tracer_provider`` here nor a global one. The global provider is
read from ``opentelemetry.trace._TRACER_PROVIDER``, a private module attribute
that stays None until ``trace.set_tracer_provider()`` (or the
``OTEL_PYTHON_TRACER_PROVIDER`` variable) sets one: the public
``get_tracer_provider()`` answers a proxy either way, and reads the environment
on every call. ``tests/unit/test_tracing.py`` fails if that attribute goes. A
global provider can be set once per process, so once found its tracer is kept.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

from dbdaora.exceptions import EntityNotFoundError
from dbdaora.meta import ModelMeta
from dbdaora.session.breakers import breaker_state

try:
    from opentelemetry import trace as _trace
except ImportError:  # the otel extra is not installed: tracing stays off
    _trace = None  # type: ignore[assignment] # the module is optional

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

F = TypeVar("F", bound=Callable[..., Any])

# The variable that has opentelemetry load a provider on its first get_tracer_provider().
_FROM_ENVIRONMENT = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ

SYSTEMS = {
    "memory": "memory",
    "redis": "redis",
    "rediss": "redis",
    "unix": "redis",
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "datastore": "datastore",
}
"""``db.system`` by URL scheme (its part before any ``+``)."""


class _State:
    __slots__ = ("given", "tracer")

    def __init__(self) -> None:
        self.given: TracerProvider | None = None  # set_tracer_provider's, else the global one
        self.tracer: Tracer | None = None  # found once a provider is set


_state = _State()


class Notes:
    """What one traced operation met on its way, for its span's attributes."""

    __slots__ = ("cache_hits", "fallback_reads")

    def __init__(self) -> None:
        self.cache_hits = 0
        self.fallback_reads = 0


_NOTES: contextvars.ContextVar[Notes | None] = contextvars.ContextVar("dbdaora_notes", default=None)


def set_tracer_provider(tracer_provider: TracerProvider | None) -> None:
    """Send dbdaora's spans to ``tracer_provider``; None: to the global provider (the default).

    With the global one, nothing needs calling: dbdaora traces once
    ``opentelemetry.trace.set_tracer_provider()`` set one. A ``NoOpTracerProvider``
    turns tracing off.
    """
    _state.given = tracer_provider
    _state.tracer = None


def current() -> Tracer | None:
    """dbdaora's tracer, or None while tracing is off (the check on every operation)."""
    tracer = _state.tracer
    if tracer is not None:
        return tracer
    if _trace is None or (
        _state.given is None and _trace._TRACER_PROVIDER is None and not _FROM_ENVIRONMENT
    ):
        return None
    return _start()


def _start() -> Tracer | None:
    assert _trace is not None
    provider = _state.given if _state.given is not None else _trace.get_tracer_provider()
    if isinstance(provider, (_trace.NoOpTracerProvider, _trace.ProxyTracerProvider)):
        return None
    _state.tracer = provider.get_tracer("dbdaora")
    return _state.tracer


def note_cache_hit() -> None:
    """The session cache answered a read of the operation under way, if one is traced."""
    notes = _NOTES.get()
    if notes is not None:
        notes.cache_hits += 1


def note_fallback_read(count: int) -> None:
    """The operation under way, if traced, read ``count`` records from the fallback."""
    notes = _NOTES.get()
    if notes is not None:
        notes.fallback_reads += count


@functools.lru_cache(maxsize=64)
def store_attributes(url: str) -> dict[str, str | int]:
    """``db.system``, ``server.address``, ``server.port`` and ``db.namespace`` of a
    store's URL, where it says them; never its credentials."""
    parts = urlsplit(url)
    scheme, _, variant = parts.scheme.partition("+")
    attributes: dict[str, str | int] = {"db.system": SYSTEMS.get(scheme, scheme)}
    path, query = parts.path, parse_qs(parts.query)
    if scheme == "datastore":  # datastore://PROJECT?namespace=NS: no server to name
        attributes["db.namespace"] = "/".join([parts.netloc, *query.get("namespace", [])])
        return attributes
    if scheme == "sqlite":  # the file, after sqlite:///
        attributes["db.namespace"] = path[1:] or ":memory:"
        return attributes
    if scheme == "unix":
        attributes["server.address"] = path
        attributes["db.namespace"] = query.get("db", ["0"])[0]
        return attributes
    # A cluster's or Sentinel deployment's URL lists hosts: the first one stands for them.
    host = parts.netloc.rpartition("@")[2].split(",")[0]
    if host:
        server = urlsplit(f"//{host}")
        attributes["server.address"] = server.hostname or host
        with contextlib.suppress(ValueError):
            if server.port is not None:
                attributes["server.port"] = server.port
    names = [name for name in path.split("/") if name]
    if variant == "sentinel":  # /master-name/db
        names = names[1:]
    database = names[0] if names else ""
    if scheme in ("redis", "rediss"):  # a cluster has only database 0
        attributes["db.namespace"] = "0" if variant == "cluster" else database or "0"
    elif database:
        attributes["db.namespace"] = database
    return attributes


def operation(name: str, method: F) -> F:
    """``method``, a manager's operation ``name``, in a span when tracing is on.

    An operation another one calls (a sorted set's ``get`` is its ``range``)
    makes no span of its own.
    """

    async def spanned(tracer: Tracer, manager: Any, args: Any, kwargs: Any) -> Any:
        meta: ModelMeta = manager.meta
        session = manager.session
        attributes = {**store_attributes(session.memory.url), "db.operation.name": name}
        notes = Notes()
        reset = _NOTES.set(notes)
        try:
            with tracer.start_as_current_span(
                f"dbdaora.{name} {meta.name}",
                kind=_trace.SpanKind.CLIENT,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                try:
                    return await method(manager, *args, **kwargs)
                except EntityNotFoundError:
                    span.set_attribute("dbdaora.found", False)
                    raise
                except Exception as exc:
                    failed(span, exc)
                    raise
                finally:
                    span.set_attributes(
                        {
                            "dbdaora.cache_hit": notes.cache_hits > 0,
                            "dbdaora.fallback_read": notes.fallback_reads > 0,
                            "dbdaora.breaker.memory": breaker_state(session.memory_breaker),
                            "dbdaora.breaker.fallback": breaker_state(session.fallback_breaker),
                        }
                    )
        finally:
            _NOTES.reset(reset)

    @functools.wraps(method)
    def wrapper(manager: Any, *args: Any, **kwargs: Any) -> Any:
        tracer = current()
        if tracer is None or _NOTES.get() is not None:
            return method(manager, *args, **kwargs)
        return spanned(tracer, manager, args, kwargs)

    return cast(F, wrapper)


def fallback_call(durable: F) -> F:
    """``Guard.durable``, each fallback call in a child span when tracing is on."""

    async def spanned(tracer: Tracer, guard: Any, call: Any, args: Any, kwargs: Any) -> Any:
        what = getattr(call, "__name__", "call")
        model = f" {args[0].name}" if args and isinstance(args[0], ModelMeta) else ""
        with tracer.start_as_current_span(
            f"dbdaora.fallback.{what}{model}",
            kind=_trace.SpanKind.CLIENT,
            attributes={**store_attributes(guard.fallback.url), "db.operation.name": what},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                return await durable(guard, call, *args, **kwargs)
            except Exception as exc:
                failed(span, exc)
                raise

    @functools.wraps(durable)
    def wrapper(guard: Any, call: Any, *args: Any, **kwargs: Any) -> Any:
        tracer = current()
        if tracer is None:
            return durable(guard, call, *args, **kwargs)
        return spanned(tracer, guard, call, args, kwargs)

    return cast(F, wrapper)


def failed(span: Span, exc: Exception) -> None:
    """Record a failure on a span: the exception, ``error.type`` and the ERROR status."""
    assert _trace is not None
    span.record_exception(exc)
    span.set_attribute("error.type", f"{type(exc).__module__}.{type(exc).__qualname__}")
    span.set_status(_trace.Status(_trace.StatusCode.ERROR, str(exc)))
