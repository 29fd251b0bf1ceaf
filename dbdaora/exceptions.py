"""Every error dbdaora raises, under one root: :class:`DBDaoraError`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class DBDaoraError(Exception):
    """Root of every error raised by dbdaora."""


class ConfigurationError(DBDaoraError):
    """A model declaration or a setting is wrong; raised before any I/O.

    Attributes:
        model: the model's class name, when the error is about one.
    """

    def __init__(self, message: str, *, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model


class ValidationError(DBDaoraError, ValueError):
    """A value does not fit its field or key; raised before any I/O.

    Attributes:
        model: the model's class name.
        field: the field (or key part) the value was meant for.
        value: the offending value.
    """

    def __init__(
        self, message: str, *, model: str, field: str | None = None, value: Any = None
    ) -> None:
        super().__init__(message)
        self.model = model
        self.field = field
        self.value = value


class UnknownFieldError(ValidationError, AttributeError):
    """An attribute set on a model instance that is no field of its model.

    An ``AttributeError`` too, as for a class with ``__slots__``.
    """


# ConfigurationError types ``model`` optional (a setting's error names no model) and
# ValidationError a str; a LayoutError always names its model, so both hold.
class LayoutError(ValidationError, ConfigurationError):  # type: ignore[misc]
    """A model's fields make none of the data types' layouts: a geospatial model
    missing one of ``GeoMember()``, ``Latitude()`` and ``Longitude()``, a flag model
    with a field beside its ``Flag()``, two ``Score()`` fields.

    A declaration mistake, raised when the class is created, so a
    ``ConfigurationError`` as every other; and a ``ValidationError``, since the
    fields given do not fit the model's type (what issue 19 asked of the
    geospatial and flag models).

    Attributes:
        model: the model's class name.
        field: the fields in question, comma-separated.
        value: None.
    """

    def __init__(self, message: str, *, model: str, fields: Iterable[str]) -> None:
        DBDaoraError.__init__(self, message)
        self.model = model
        self.field = ", ".join(fields)
        self.value = None


class EntityNotFoundError(DBDaoraError, KeyError):
    """Neither Redis nor the fallback holds the entity asked for.

    Attributes:
        model: the model's class name.
        key: the key parts asked for.
    """

    def __init__(self, model: str, key: tuple[Any, ...]) -> None:
        super().__init__(f"{model} {key!r} not found")
        self.model = model
        self.key = key

    def __str__(self) -> str:
        # KeyError's str() quotes its argument; this reads as a sentence instead.
        return str(self.args[0])


class BackendError(DBDaoraError):
    """A store failed (connection lost, timeout, driver error).

    The driver's exception is the ``__cause__``; ``url`` has its password masked;
    ``message`` is the text without the URL.

    For a write to the fallback, which records it changed: ``written`` names the
    records it certainly committed (a batch the store commits in parts), and
    ``unknown`` those it may or may not have committed (a commit sent whose answer
    never came: such errors are :class:`OutcomeUnknownError`). Every other record
    of the write certainly kept its old value: the database refused the write,
    was down or locked, or rolled the transaction back before committing. Both
    are empty for reads and for errors of the Redis side.

    Attributes:
        url: the store's URL, password masked.
        message: the text without the URL.
        written: names (key parts joined with ``:``) of records certainly written.
        unknown: names of records whose write may or may not have taken effect.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        written: Iterable[str] = (),
        unknown: Iterable[str] = (),
    ) -> None:
        super().__init__(f"{message} ({url})")
        self.message = message
        self.url = url
        self.written = frozenset(written)
        self.unknown = frozenset(unknown)


class OutcomeUnknownError(BackendError):
    """A fallback write whose outcome is unknown for the records in ``unknown``.

    The commit was sent and no answer came back (a timeout, the connection lost
    during COMMIT): those records may hold the new value or the old one. The
    managers delete their Redis copies, so the next read returns what the
    fallback really holds. Catch it apart from ``BackendError`` to re-read, or to
    retry a write that is safe to repeat (an ``add`` of whole entities is).
    """


class RedisUnavailableError(BackendError):
    """The Redis side failed, timed out, or its circuit breaker is open.

    Sessions catch it and answer from the fallback; it reaches callers only
    through stores used without a session.
    """


class NodeUnavailableError(RedisUnavailableError):
    """One master of a Redis Cluster failed, timed out, or its circuit breaker is open.

    Only the keys whose slots that master serves are answered from the fallback;
    the other masters' keys keep coming from Redis.

    Attributes:
        node: the master's ``host:port``.
    """

    def __init__(self, message: str, *, url: str, node: str) -> None:
        super().__init__(message, url=url)
        self.node = node


class BadDataError(DBDaoraError):
    """Redis refused a command for what a key holds, not for its own state.

    A key of another type than the operation's (``WRONGTYPE``, say a string
    where a hash belongs) makes every command on it fail while Redis itself is
    fine. So it is not a ``BackendError``: no circuit breaker counts it.
    Sessions log it (a warning on the ``dbdaora`` logger, naming the key),
    answer from the fallback and replace the key; it reaches callers only
    through stores used without a session.

    Attributes:
        message: the text without the URL.
        url: the store's URL, its password masked.
    """

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(f"{message} ({url})")
        self.message = message
        self.url = url


def cause(exc: BaseException) -> str:
    """The cause of a store failure in a few words: connection refused, timeout,
    authentication failed, or the driver's own text."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    texts = " ".join(f"{type(error).__name__} {error}" for error in chain).lower()
    if "auth" in texts or "password" in texts or "noperm" in texts:
        return "authentication failed"
    if "refused" in texts:
        return "connection refused"
    if "timeout" in texts or "timed out" in texts:
        return "timeout"
    last = chain[-1]
    return str(last) or type(last).__name__


def failure_text(exc: BaseException) -> str:
    """``cause(exc)``, then the driver's own text where it says more."""
    why, text = cause(exc), str(exc) or type(exc).__name__
    return why if why == text else f"{why}: {text}"
