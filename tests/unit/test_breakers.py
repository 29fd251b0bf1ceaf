"""Breakers that probe their store while open, and word their refusals: on memory:// stores."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from dbdaora import Session
from dbdaora.backends import DictFallback, InProcessRedis
from dbdaora.exceptions import BackendError, ConfigurationError, RedisUnavailableError
from tests.support.models import Person

BREAKER = {"fail_max": 2, "reset_timeout": 60, "probe_interval": 0.05}
REFUSAL = re.compile(r"circuit breaker open until \d\d:\d\d:\d\d \(next probe in \d+\.\d s\)")


class FlakyFallback(DictFallback):
    """A dict fallback that fails every call, ping included, while ``down``."""

    def __init__(self) -> None:
        super().__init__("memory://fallback")
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise BackendError("fallback down", url=self.url)

    async def ping(self) -> None:
        self._check()

    async def put_many(self, *args: object) -> None:  # type: ignore[override]
        self._check()
        await super().put_many(*args)  # type: ignore[arg-type]


def _session(store: InProcessRedis, fallback: DictFallback | None = None) -> Session:
    return Session(memory=store, fallback=fallback or DictFallback(), breaker=BREAKER)


async def _wait_closed(session: Session, which: str, within: float) -> float:
    started = time.monotonic()
    while session.stats()["breakers"][which] != "closed":
        assert time.monotonic() - started < within, f"{which} breaker still open"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_an_open_breaker_closes_on_the_first_answered_probe() -> None:
    """Long before reset_timeout, the probe closes the breaker once the store answers."""
    store = InProcessRedis()
    async with _session(store) as session:
        people = Person.objects.using(session)
        await people.add(Person(id="a", name="A"))
        store.down = True
        for _ in range(2):
            await people.get("a")
        assert session.stats()["breakers"]["memory"] == "open"
        await asyncio.sleep(0.2)
        assert session.stats()["breakers"]["memory"] == "open"  # probes fail meanwhile
        assert session.memory_breaker is not None and session.memory_breaker.probes >= 2
        store.down = False
        assert await _wait_closed(session, "memory", within=1.0) < 0.2
        hits = session.stats()["models"]["Person"]["redis_hits"]
        await people.get("a")
        assert session.stats()["models"]["Person"]["redis_hits"] == hits + 1


async def test_the_refusal_names_the_store_and_until_when() -> None:
    """An open breaker's error is RedisUnavailableError naming the store, open and until when."""
    store = InProcessRedis("memory://side")
    async with _session(store) as session:
        store.down = True
        for _ in range(2):
            with pytest.raises(RedisUnavailableError):
                await session.redis(store.hgetall, b"k")
        with pytest.raises(RedisUnavailableError) as caught:
            await session.redis(store.hgetall, b"k")
        message = str(caught.value)
        assert REFUSAL.search(message) and message.endswith("(memory://side)"), message
        assert caught.value.url == "memory://side"
        assert "Timeout not elapsed" not in message and "datetime" not in message


async def test_an_open_fallback_breaker_refuses_with_a_backend_error_then_recovers() -> None:
    """Writes refused while the fallback's breaker is open say so; they succeed once it answers."""
    fallback = FlakyFallback()
    async with _session(InProcessRedis(), fallback) as session:
        people = Person.objects.using(session)
        fallback.down = True
        for _ in range(2):
            with pytest.raises(BackendError, match="fallback down"):
                await people.add(Person(id="a", name="A"))
        with pytest.raises(BackendError) as caught:
            await people.add(Person(id="a", name="A"))
        assert REFUSAL.search(str(caught.value)) and caught.value.url == "memory://fallback"
        fallback.down = False
        await _wait_closed(session, "fallback", within=1.0)
        await people.add(Person(id="a", name="A"))
        assert (await people.get("a")).name == "A"


async def test_closing_the_session_stops_the_probe() -> None:
    """No probe outlives its session's close()."""
    store = InProcessRedis()
    session = _session(store)
    store.down = True
    for _ in range(2):
        await Person.objects.using(session).get_many(["a"])
    breaker = session.memory_breaker
    assert breaker is not None and session.stats()["breakers"]["memory"] == "open"
    prober = breaker._prober
    assert prober is not None and not prober.done()
    await session.close()
    assert prober.done()
    probes = breaker.probes
    await asyncio.sleep(0.15)
    assert breaker.probes == probes


def test_probe_interval_is_checked_like_the_other_options() -> None:
    """A bad probe_interval fails clearly when the session is built."""
    with pytest.raises(ConfigurationError, match=r"breaker: probe_interval must be a positive"):
        Session(breaker={"probe_interval": 0})
