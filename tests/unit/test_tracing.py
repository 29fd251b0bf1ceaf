"""OpenTelemetry spans (issue 18): one per operation, a child per fallback call, collected
with the SDK's in-memory exporter from a private redis-server and a SQLite fallback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import opentelemetry.trace
import pytest
import redis
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

import dbdaora
from dbdaora import BackendError, EntityNotFoundError, Session
from dbdaora.session import tracing
from tests.support.models import Liked, Person, Ranking, Shop
from tests.support.servers import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """dbdaora's spans go to an SDK provider with an in-memory exporter, for this test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    dbdaora.set_tracer_provider(provider)
    yield exporter
    dbdaora.set_tracer_provider(None)
    provider.shutdown()


@pytest.fixture
async def session(
    redis_proc: RedisServer, raw_redis: redis.Redis, tmp_path: Path
) -> AsyncIterator[Session]:
    """The private redis-server and a SQLite file (each table made on first use: other
    tests declare models of the same names); the first repair is done before a test."""
    fallback = f"sqlite+aiosqlite:///{tmp_path / 'fallback.db'}"
    async with Session(memory=redis_proc.url, fallback=fallback, repair_interval=3600) as s:
        await s.repair()
        yield s


def _finished(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    found = {span.name: span for span in exporter.get_finished_spans()}
    assert len(found) == len(exporter.get_finished_spans()), "one span per name"
    return found


def _child_of(child: ReadableSpan, parent: ReadableSpan) -> bool:
    assert child.parent is not None and parent.context is not None
    return (
        child.parent.span_id == parent.context.span_id
        and child.context is not None
        and child.context.trace_id == parent.context.trace_id
    )


async def test_a_get_that_hits_redis(
    spans: InMemorySpanExporter, session: Session, redis_proc: RedisServer
) -> None:
    """A Redis hit: one client span with the Redis attributes, no fallback child."""
    people = Person.objects.using(session)
    await people.add(Person(id="1", name="Ann"))
    spans.clear()
    assert (await people.get("1")).name == "Ann"
    (span,) = spans.get_finished_spans()
    assert span.name == "dbdaora.get Person" and span.kind is SpanKind.CLIENT
    assert dict(span.attributes or {}) == {
        "db.system": "redis",
        "db.operation.name": "get",
        "server.address": "127.0.0.1",
        "server.port": redis_proc.port,
        "db.namespace": "0",
        "dbdaora.cache_hit": False,
        "dbdaora.fallback_read": False,
        "dbdaora.breaker.memory": "closed",
        "dbdaora.breaker.fallback": "closed",
    }
    assert span.status.status_code is StatusCode.UNSET


async def test_a_get_that_reads_the_fallback(
    spans: InMemorySpanExporter, session: Session, raw_redis: redis.Redis, tmp_path: Path
) -> None:
    """A Redis miss: the fallback's read is a child span of the get, with SQLite's attributes."""
    people = Person.objects.using(session)
    await people.add(Person(id="1", name="Ann"))
    raw_redis.delete("person:1")
    spans.clear()
    assert (await people.get("1")).name == "Ann"
    found = _finished(spans)
    get, read = found["dbdaora.get Person"], found["dbdaora.fallback.get_many Person"]
    assert set(found) == {get.name, read.name}
    assert _child_of(read, get) and read.kind is SpanKind.CLIENT
    assert dict(read.attributes or {}) == {
        "db.system": "sqlite",
        "db.operation.name": "get_many",
        "db.namespace": str(tmp_path / "fallback.db"),
    }
    assert get.attributes is not None and get.attributes["dbdaora.fallback_read"] is True
    assert raw_redis.hgetall("person:1")  # filled back


async def test_writes_make_fallback_child_spans(
    spans: InMemorySpanExporter, session: Session
) -> None:
    """add and delete each write the fallback under their own span."""
    people = Person.objects.using(session)
    spans.clear()  # the fixture's repair, a root span of its own
    await people.add(Person(id="1", name="Ann"))
    await people.delete("1")
    found = _finished(spans)
    assert set(found) == {
        "dbdaora.add Person",
        "dbdaora.fallback.put_many Person",
        "dbdaora.delete Person",
        "dbdaora.fallback.delete Person",
    }
    assert _child_of(found["dbdaora.fallback.put_many Person"], found["dbdaora.add Person"])
    assert _child_of(found["dbdaora.fallback.delete Person"], found["dbdaora.delete Person"])
    write = found["dbdaora.fallback.put_many Person"].attributes or {}
    assert write["db.system"] == "sqlite" and write["db.operation.name"] == "put_many"


async def test_each_operation_names_its_span(spans: InMemorySpanExporter, session: Session) -> None:
    """get_many, exists and range: ``dbdaora.<operation> <Model>``; a sorted set's get
    (its range) makes one span, not two."""
    people, ranking = Person.objects.using(session), Ranking.objects.using(session)
    await people.add(Person(id="1", name="Ann"), Person(id="2", name="Bob"))
    await ranking.add(Ranking(board="b", player="p", points=1.0))
    spans.clear()
    assert len(await people.get_many(["1", "2"])) == 2
    assert await people.exists("1")
    assert len(await ranking.range("b")) == 1
    assert len(await ranking.get("b")) == 1
    names = [span.name for span in spans.get_finished_spans()]
    assert names == [
        "dbdaora.get_many Person",
        "dbdaora.exists Person",
        "dbdaora.range Ranking",
        "dbdaora.get Ranking",
    ]
    operations = [(s.attributes or {})["db.operation.name"] for s in spans.get_finished_spans()]
    assert operations == ["get_many", "exists", "range", "get"]


async def test_flag_operations_make_one_span_each(
    spans: InMemorySpanExporter, session: Session
) -> None:
    """A flag model's add, exists, exists_many, get and delete: one span each, its fallback
    read a child of the read that missed."""
    liked = Liked.objects.using(session)
    await liked.add(Liked(id="a"))
    assert await liked.exists("a") and not await liked.exists("b")
    assert await liked.exists_many(["a", "c"]) == [True, False]
    assert await liked.get("a") == Liked(id="a")
    await liked.delete("a")
    names = [span.name for span in spans.get_finished_spans() if "fallback" not in span.name]
    assert names == [
        "dbdaora.add Liked",
        "dbdaora.exists Liked",
        "dbdaora.exists Liked",
        "dbdaora.exists_many Liked",
        "dbdaora.get Liked",
        "dbdaora.delete Liked",
    ]
    reads = [s for s in spans.get_finished_spans() if s.name == "dbdaora.fallback.get_many Liked"]
    exists_b = [s for s in spans.get_finished_spans() if s.name == "dbdaora.exists Liked"][1]
    assert len(reads) == 2 and _child_of(reads[0], exists_b)


async def test_a_session_cache_hit_is_recorded(
    spans: InMemorySpanExporter, redis_proc: RedisServer
) -> None:
    """The second get, answered by the session cache, says so."""
    cache = {"ttl": 60, "max_size": 10}
    async with Session(memory=redis_proc.url, fallback="memory://", cache=cache) as session:
        people = Person.objects.using(session)
        await people.add(Person(id="1", name="Ann"))
        spans.clear()
        await people.get("1")
        await people.get("1")
    first, second = spans.get_finished_spans()
    # redis:// tracks the cache: an add keeps nothing (Redis's invalidation of the key
    # ends its tracking), so the first get reads Redis and the second hits.
    assert (first.attributes or {})["dbdaora.cache_hit"] is False
    assert (second.attributes or {})["dbdaora.cache_hit"] is True
    assert (second.attributes or {})["dbdaora.fallback_read"] is False


async def test_an_open_breaker_is_recorded(spans: InMemorySpanExporter) -> None:
    """Redis unreachable: the get reads the fallback, and its span shows the breaker open."""
    breaker = {"fail_max": 1, "reset_timeout": 60, "probe_interval": 60}
    url = f"redis://127.0.0.1:{free_port()}/0"
    async with Session(memory=url, fallback="memory://", breaker=breaker) as session:
        people = Person.objects.using(session)
        with pytest.raises(EntityNotFoundError):
            await people.get("1")
        assert session.stats()["breakers"]["memory"] == "open"
    get = _finished(spans)["dbdaora.get Person"]
    attributes = get.attributes or {}
    assert attributes["dbdaora.breaker.memory"] == "open"
    assert attributes["dbdaora.breaker.fallback"] == "closed"
    assert attributes["dbdaora.fallback_read"] is True and attributes["dbdaora.found"] is False
    assert get.status.status_code is StatusCode.UNSET  # not found is an answer, not a failure


async def test_an_error_is_recorded(spans: InMemorySpanExporter) -> None:
    """A fallback that does not answer: both spans carry the exception and the ERROR status."""
    url = f"postgresql+asyncpg://app:secret@127.0.0.1:{free_port()}/app"
    async with Session(memory="memory://", fallback=url) as session:
        with pytest.raises(BackendError):
            await Person.objects.using(session).get("1")
    found = _finished(spans)
    get, read = found["dbdaora.get Person"], found["dbdaora.fallback.get_many Person"]
    assert _child_of(read, get)
    for span in (get, read):
        assert span.status.status_code is StatusCode.ERROR
        assert (span.attributes or {})["error.type"] == "dbdaora.exceptions.BackendError"
        (event,) = span.events
        assert event.name == "exception" and "secret" not in str(event.attributes)
    assert (read.attributes or {})["db.system"] == "postgresql"
    assert (read.attributes or {})["server.port"] > 0 and (read.attributes or {})[
        "db.namespace"
    ] == "app"


async def test_nothing_is_traced_without_a_provider() -> None:
    """No provider given and no global one: no tracer, and operations run as ever."""
    assert opentelemetry.trace._TRACER_PROVIDER is None  # no test sets the global one
    assert tracing.current() is None
    async with Session(memory="memory://", fallback="memory://") as session:
        people = Person.objects.using(session)
        await people.add(Person(id="1", name="Ann"))
        assert (await people.get("1")).name == "Ann"


async def test_a_noop_provider_turns_tracing_off() -> None:
    """A NoOpTracerProvider given explicitly: no tracer."""
    dbdaora.set_tracer_provider(NoOpTracerProvider())
    try:
        assert tracing.current() is None
    finally:
        dbdaora.set_tracer_provider(None)


def test_the_global_provider_is_found_once_set() -> None:
    """In a fresh process: off until ``opentelemetry.trace.set_tracer_provider``, then the
    spans go to the global provider. This reads opentelemetry's private
    ``_TRACER_PROVIDER`` (see ``session.tracing``): the test fails if it goes."""
    script = textwrap.dedent(
        """
        import asyncio
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from dbdaora import Session
        from dbdaora.session import tracing
        from tests.support.models import Person

        async def get_one():
            async with Session(memory="memory://", fallback="memory://") as session:
                people = Person.objects.using(session)
                await people.add(Person(id="1", name="Ann"))
                await people.get("1")

        assert trace._TRACER_PROVIDER is None and tracing.current() is None
        asyncio.run(get_one())
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        assert trace._TRACER_PROVIDER is provider and tracing.current() is not None
        asyncio.run(get_one())
        print(sorted({span.name for span in exporter.get_finished_spans()}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(
        [
            "dbdaora.add Person",
            "dbdaora.fallback.put_many Person",
            "dbdaora.fallback.repairs",
            "dbdaora.get Person",
        ]
    )


def test_store_attributes_name_no_credentials() -> None:
    """Each URL scheme's semantic-convention attributes; passwords never appear."""
    cases = {
        "memory://": {"db.system": "memory"},
        "unix:///run/redis.sock?db=2": {
            "db.system": "redis",
            "server.address": "/run/redis.sock",
            "db.namespace": "2",
        },
        "redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7000": {
            "db.system": "redis",
            "server.address": "10.0.0.1",
            "server.port": 7000,
            "db.namespace": "0",
        },
        "redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/mymaster/4": {
            "db.system": "redis",
            "server.address": "10.0.0.1",
            "server.port": 26379,
            "db.namespace": "4",
        },
        "postgresql+asyncpg://app:pw@db.local:5432/shop": {
            "db.system": "postgresql",
            "server.address": "db.local",
            "server.port": 5432,
            "db.namespace": "shop",
        },
        "datastore://my-project?namespace=prod": {
            "db.system": "datastore",
            "db.namespace": "my-project/prod",
        },
    }
    for url, expected in cases.items():
        assert tracing.store_attributes(url) == expected, url


async def test_a_geospatial_near_read_through(
    spans: InMemorySpanExporter, session: Session, raw_redis: redis.Redis
) -> None:
    """A geospatial near is an operation span; its read through, a fallback child span."""
    shops = Shop.objects.using(session)
    await shops.add(Shop(city="paris", name="louvre", latitude=48.8606, longitude=2.3376))
    raw_redis.delete("shop:paris")
    spans.clear()
    found = await shops.near("paris", latitude=48.8566, longitude=2.3522, radius=5)
    assert [shop.name for shop, _ in found] == ["louvre"]
    finished = _finished(spans)
    near, read = finished["dbdaora.near Shop"], finished["dbdaora.fallback.get_points Shop"]
    assert set(finished) == {near.name, read.name} and _child_of(read, near)
