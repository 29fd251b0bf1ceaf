"""Redis Sentinel (``redis+sentinel://``): a private master, replica and three sentinels.

The session reads and writes the master the sentinels name; during a failover it
answers from the fallback and keeps writing; once the replica is promoted it
reaches it within a probe or two, and the copies the replica held from before
the last acknowledged writes are never served, in this process or another.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from dbdaora import Session
from dbdaora.backends import open_redis_side
from dbdaora.backends.redis.wire.sentinel import parse_sentinel_url
from dbdaora.exceptions import BackendError, ConfigurationError
from tests.support.models import Person
from tests.support.reader import read_in_another_process
from tests.support.sentinel_server import MASTER_NAME, SentinelServer
from tests.support.servers import free_port

# The brief's bound on reaching the promoted master, from the moment every sentinel
# reports it: two probe intervals (0.5 s) and a margin for a busy machine.
REACH_BOUND = 3.0


def _failover_session(url: str, fallback: str) -> Session:
    return Session(
        memory=url,
        fallback=fallback,
        expire_time=3600,
        memory_timeout=0.5,
        breaker={"fail_max": 1, "reset_timeout": 30, "probe_interval": 0.5},
    )


@pytest.mark.parametrize("autopipeline", [True, False], ids=["multiplexed", "pooled"])
async def test_reads_and_writes_go_to_the_master(
    sentinel: SentinelServer, autopipeline: bool
) -> None:
    """add, get and delete through the sentinels land on the master, and replicate."""
    async with Session(
        memory=sentinel.url(), fallback="memory://", autopipeline=autopipeline
    ) as session:
        people = Person.objects.using(session)
        await people.add(Person(id="a", name="Ann", age=3))
        assert await people.get("a") == Person(id="a", name="Ann", age=3)
        assert session.stats()["models"]["Person"]["fallback_reads"] == 0
        with sentinel.master().client() as master:
            assert master.hget(b"person:a", "name") == b"Ann"
            master.wait(1, 2000)
        with sentinel.replica().client() as replica:
            assert replica.hget(b"person:a", "name") == b"Ann"
        await people.delete("a")
        assert not await people.exists("a")


async def test_the_database_in_the_path_is_used(sentinel: SentinelServer) -> None:
    """``/<master>/3`` selects database 3 on the master."""
    async with Session(memory=sentinel.url(db=3), fallback="memory://") as session:
        await Person.objects.using(session).add(Person(id="a", name="Ann"))
    with sentinel.master().client() as master:
        master.execute_command("SELECT", 3)
        assert master.hget(b"person:a", "name") == b"Ann"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://:secret@/mymaster/0", "no sentinel host:port listed"),
        ("redis+sentinel://:secret@127.0.0.1:26379", "no master name"),
        ("redis+sentinel://:secret@127.0.0.1:26379/", "no master name"),
        ("redis+sentinel://:secret@127.0.0.1:26379/m/x", "database 'x' is not a number"),
        ("redis+sentinel://:secret@127.0.0.1:nope/m/0", "sentinel '127.0.0.1:nope'"),
    ],
)
def test_a_bad_sentinel_url_is_refused_before_any_io(url: str, message: str) -> None:
    """No host, no master name or a bad database: ConfigurationError, password masked."""
    with pytest.raises(ConfigurationError) as raised:
        open_redis_side(url)
    text = str(raised.value)
    assert message in text
    assert "redis+sentinel://:***@" in text and "secret" not in text


def test_the_sentinel_password_is_masked_and_kept_apart() -> None:
    """``sentinel_password`` goes to the sentinels, not the data nodes, and never shows."""
    url = "rediss+sentinel://u:pw@h1:1,h2:2/m/2?sentinel_password=sp&socket_timeout=2"
    sentinels, name, options, sentinel_options = parse_sentinel_url(url)
    assert sentinels == [("h1", 1), ("h2", 2)] and name == "m"
    assert options["password"] == "pw" and options["username"] == "u" and options["db"] == 2
    assert options["socket_timeout"] == 2.0 and options["connection_class"].__name__.endswith(
        "SSLConnection"
    )
    assert sentinel_options["password"] == "sp" and sentinel_options["socket_timeout"] == 2.0
    assert "sentinel_password" not in options
    assert open_redis_side(url).url == (
        "rediss+sentinel://u:***@h1:1,h2:2/m/2?sentinel_password=***&socket_timeout=2"
    )


async def test_an_unknown_master_name_is_a_backend_error_naming_it(
    sentinel_proc: SentinelServer,
) -> None:
    """Sentinels that know no such master: BackendError with the name."""
    store = open_redis_side(sentinel_proc.url().replace(MASTER_NAME, "no-such-master"))
    try:
        with pytest.raises(BackendError, match="no-such-master"):
            await store.ping()
    finally:
        await store.close()


async def test_no_sentinel_answering_is_a_backend_error() -> None:
    """Sentinels that are all down: BackendError, the URL named."""
    url = f"redis+sentinel://127.0.0.1:{free_port()}/{MASTER_NAME}/0"
    store = open_redis_side(url)
    try:
        with pytest.raises(BackendError, match=MASTER_NAME) as raised:
            await store.ping()
        assert url in str(raised.value)
    finally:
        await store.close()


async def _until_promoted(
    sentinel: SentinelServer, old_port: int, people: Any, bob_writes: list[str]
) -> float:
    """Read and write while the sentinels fail over; when they report the new master."""
    while True:
        assert (await people.get("a")).name == "new"  # from the fallback
        name = f"bob-{len(bob_writes)}"
        await people.add(Person(id="b", name=name))
        bob_writes.append(name)
        ports = {int(s.state()["port"]) for s in sentinel.sentinels}
        if old_port not in ports and len(ports) == 1:
            return time.monotonic()
        await asyncio.sleep(0.05)


async def test_a_failover_loses_no_acknowledged_write(
    sentinel: SentinelServer, tmp_path: Path
) -> None:
    """kill -9 of the master: reads answer and writes succeed during the failover; the
    promoted replica is reached within REACH_BOUND of the sentinels reporting it; the
    write acknowledged just before the kill, which the replica never got, is what this
    process and another one read."""
    fallback = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    session = _failover_session(sentinel.url(), fallback)
    people = Person.objects.using(session)
    await session.create_all()
    await people.add(Person(id="a", name="old"))
    master, replica = sentinel.master(), sentinel.replica()
    with master.client() as client:
        client.wait(1, 2000)  # the replica has "old"
        # The replica stops, and its link is cut: the next write reaches the master alone.
        assert replica.process is not None
        replica.process.send_signal(signal.SIGSTOP)
        client.execute_command("CLIENT", "KILL", "TYPE", "replica")
    await people.add(Person(id="a", name="new"))  # acknowledged
    master.kill()
    replica.process.send_signal(signal.SIGCONT)
    with replica.client() as client:
        assert client.hget(b"person:a", "name") == b"old"  # the copy the replica holds

    bob_writes: list[str] = []
    promoted_at = await _until_promoted(sentinel, master.port, people, bob_writes)
    assert bob_writes  # writes went on during the failover
    while session.stats()["breakers"]["memory"] != "closed":
        assert time.monotonic() - promoted_at <= REACH_BOUND, "the new master was not reached"
        await asyncio.sleep(0.01)
    reached = time.monotonic() - promoted_at
    reads_before = session.stats()["models"]["Person"]["fallback_reads"]
    assert (await people.get("a")).name == "new"
    assert (await people.get("b")).name == bob_writes[-1]
    assert (await people.get("b")).name == bob_writes[-1]  # now from Redis
    assert session.stats()["models"]["Person"]["fallback_reads"] <= reads_before + 2
    print(f"the session reached the new master {reached:.2f}s after the sentinels reported it")
    with replica.client() as client:
        assert client.hget(b"person:a", "name") != b"old"  # swept, then filled from the fallback
    assert await read_in_another_process(sentinel.url(), fallback) == "new"
    await session.close()


async def test_a_fresh_process_never_reads_the_promoted_replicas_older_copy(
    sentinel: SentinelServer, tmp_path: Path
) -> None:
    """A process started after the failover, before any session looked, reads new."""
    fallback = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with _failover_session(sentinel.url(), fallback) as session:
        people = Person.objects.using(session)
        await session.create_all()
        await people.add(Person(id="a", name="old"))
        master, replica = sentinel.master(), sentinel.replica()
        assert replica.process is not None
        with master.client() as client:
            client.wait(1, 2000)
            replica.process.send_signal(signal.SIGSTOP)
            client.execute_command("CLIENT", "KILL", "TYPE", "replica")
        await people.add(Person(id="a", name="new"))
        master.kill()
        replica.process.send_signal(signal.SIGCONT)
    sentinel.wait_promoted(master.port)
    with replica.client() as client:
        assert client.hget(b"person:a", "name") == b"old"
    assert await read_in_another_process(sentinel.url(), fallback) == "new"
    with replica.client() as client:
        assert client.hget(b"person:a", "name") != b"old"


async def test_a_graceful_failover_is_followed_and_no_older_copy_served(
    sentinel: SentinelServer, tmp_path: Path
) -> None:
    """SENTINEL FAILOVER: the old master stays up, a master, until Sentinel demotes it
    (seconds later); the session moves to the promoted replica within REACH_BOUND of
    the sentinels reporting it, and never serves the copy the replica held that the
    fallback does not."""
    fallback = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with Session(memory=sentinel.url(), fallback=fallback, expire_time=3600) as session:
        people = Person.objects.using(session)
        await session.create_all()
        await people.add(Person(id="a", name="new"))
        old, replica = sentinel.master(), sentinel.replica()
        with old.client() as client:
            client.wait(1, 2000)
        with replica.client() as client:  # the replica holds an older copy of its own
            client.config_set("replica-read-only", "no")
            client.hset(b"person:a", "name", "older")
        try:
            with sentinel.sentinels[0].client() as client:
                client.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
            await asyncio.to_thread(sentinel.wait_promoted, old.port)
            promoted_at = time.monotonic()
            written = 0
            while True:
                assert (await people.get("a")).name == "new"
                written += 1
                await people.add(Person(id="b", name=str(written)))
                with replica.client() as client:
                    if client.hget(b"person:b", "name") == str(written).encode():
                        break
                assert time.monotonic() - promoted_at <= REACH_BOUND, "still on the old master"
                await asyncio.sleep(0.05)
            with replica.client() as client:
                assert client.hget(b"person:a", "name") != b"older"
            assert (await people.get("a")).name == "new"
        finally:
            with replica.client() as client:
                client.config_set("replica-read-only", "yes")
