"""redis+cluster:// on the shared private cluster: URLs, keys over every master, scripts,
and the interleavings only a cluster has (a write landing between a fill's commands).

The contract suite, the race tests and the state machine also run on the cluster
(conftest's STACKS and REDIS_SIDES); the node failures are in test_cluster_faults.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest
from redis.cluster import RedisCluster

from dbdaora import ConfigurationError, EntityNotFoundError, Session
from dbdaora.backends import DictFallback, mask_url, open_redis_side
from dbdaora.backends.redis import scripts
from dbdaora.backends.redis.cluster import ClusterStore
from dbdaora.backends.redis.scripts import Script
from dbdaora.backends.redis.wire.cluster import ClusterLink, parse_cluster_url
from dbdaora.backends.redis.wire.link import Calls, Lua
from tests.support.cluster_server import ClusterServer
from tests.support.models import Person, Ranking


def test_url_lists_nodes_password_and_options() -> None:
    """A cluster URL gives every node, the password, TLS and query options."""
    nodes, options = parse_cluster_url(
        "rediss+cluster://:s3cret@10.0.0.1:7000,redis-b:7001,[::1]:7002?socket_timeout=0.5"
    )
    assert nodes == [("10.0.0.1", 7000), ("redis-b", 7001), ("::1", 7002)]
    assert options == {"password": "s3cret", "socket_timeout": 0.5, "ssl": True}
    assert parse_cluster_url("redis+cluster://h:1")[1] == {}


def test_cluster_url_is_masked_and_opened_by_scheme() -> None:
    """redis+cluster:// opens a ClusterStore whose URL hides the password."""
    url = "redis+cluster://:s3cret@127.0.0.1:7000,127.0.0.1:7001/0"
    store = open_redis_side(url)
    assert isinstance(store, ClusterStore)
    assert store.url == mask_url(url) == "redis+cluster://:***@127.0.0.1:7000,127.0.0.1:7001/0"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("redis+cluster://127.0.0.1", "'127.0.0.1' is not host:port"),
        ("redis+cluster://h:1,h:x", "'h:x' is not host:port"),
        ("redis+cluster://h:1/2", "a cluster has only database 0"),
        ("redis+cluster://:pw@h:1?socket_timeout=soon", "Invalid value for 'socket_timeout'"),
    ],
)
def test_bad_cluster_url_is_a_configuration_error(url: str, complaint: str) -> None:
    """A malformed cluster URL fails when the store is made, naming what is wrong."""
    with pytest.raises(ConfigurationError, match="bad Redis Cluster URL") as error:
        ClusterStore(url)
    assert complaint in str(error.value)
    assert ":pw@" not in str(error.value)


@pytest.mark.parametrize("autopipeline", [True, False], ids=["autopipelined", "direct"])
async def test_get_many_spans_every_master(
    cluster_proc: ClusterServer, raw_cluster: RedisCluster, autopipeline: bool
) -> None:
    """One get_many reads keys on all three masters, and fills the missing ones on each."""
    ids = [f"u{i}" for i in range(100)]
    owners = {cluster_proc.node_of(f"person:{id_}".encode()).port for id_ in ids}
    assert owners == {node.port for node in cluster_proc.nodes}
    async with Session(
        memory=cluster_proc.url, fallback=DictFallback(), autopipeline=autopipeline
    ) as session:
        people = Person.objects.using(session)
        await people.add(*(Person(id=id_, name=id_.upper()) for id_ in ids))
        for id_ in ids[::3]:
            raw_cluster.delete(f"person:{id_}".encode())
        found, alone = await asyncio.gather(
            people.get_many([*reversed(ids), "nobody"]), people.get(ids[1])
        )
        assert [p.name for p in found] == [id_.upper() for id_ in reversed(ids)]
        assert alone.name == ids[1].upper()
        assert all(raw_cluster.exists(f"person:{id_}".encode()) for id_ in ids)
        assert raw_cluster.get(b"person:not-found:nobody") == b"1"


async def test_scripts_survive_a_script_flush(
    cluster_proc: ClusterServer, raw_cluster: RedisCluster
) -> None:
    """Masters that lost their scripts (a restart, SCRIPT FLUSH) still run fills and adds."""
    async with Session(memory=cluster_proc.url, fallback=DictFallback()) as session:
        people = Person.objects.using(session)
        await people.add(Person(id="a", name="A"), Person(id="b", name="B"))
        raw_cluster.script_flush()
        await people.add(Person(id="a", name="A2"))
        raw_cluster.delete(b"person:a", b"person:b")
        assert [p.name for p in await people.get_many(["a", "b"])] == ["A2", "B"]
        raw_cluster.script_flush()
        raw_cluster.delete(b"person:a")
        assert (await people.get("a")).name == "A2"
        assert raw_cluster.hget(b"person:a", b"name") == b"A2"


class PausingLink(ClusterLink):
    """A cluster link that stops before its next run of one script, until released.

    The gap it opens is the one between two single-slot commands of a fill or
    an add, where a write on another connection can land.
    """

    def __init__(self, url: str, script: Script) -> None:
        super().__init__(url, autopipeline=True, options={})
        self.script: Script | None = script
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def run_scripts(self, script: Lua, calls: Calls) -> list[Any]:
        if script is self.script:
            self.script = None
            self.reached.set()
            await self.release.wait()
        return await super().run_scripts(script, calls)


class PausingStore(ClusterStore):
    """A cluster store on a PausingLink: it stops before its next run of one script."""

    SCRIPTS: ClassVar[dict[str, Script]] = {
        "fill_absent": scripts.FILL_ABSENT,
        "add_members": scripts.ADD_MEMBERS_NO_MARKER,
        "replace": scripts.REPLACE,
        "release": scripts.RELEASE,
    }

    def __init__(self, url: str, script: str) -> None:
        super().__init__(url)
        link = PausingLink(url, self.SCRIPTS[script])
        self._link = link
        self.reached, self.release = link.reached, link.release


async def _in_the_gap(store: PausingStore, paused: Any, write: Any) -> Any:
    """Run ``paused`` up to its pause, run ``write`` whole, then let ``paused`` finish."""
    task = asyncio.ensure_future(paused)
    await asyncio.wait_for(store.reached.wait(), 10)
    await write
    store.release.set()
    return (await asyncio.gather(task, return_exceptions=True))[0]


Pair = Callable[[str], tuple[Session, Session, PausingStore]]


@pytest.fixture
async def two_sessions(
    cluster_proc: ClusterServer, raw_cluster: RedisCluster
) -> AsyncIterator[Pair]:
    """Makes a paused session and a writer's over one cluster and one fallback (two processes)."""
    made: list[Session] = []

    def make(script: str) -> tuple[Session, Session, PausingStore]:
        fallback = DictFallback()
        paused = PausingStore(cluster_proc.url, script)
        made.extend(
            (
                Session(memory=paused, fallback=fallback),
                Session(memory=cluster_proc.url, fallback=fallback),
            )
        )
        return made[-2], made[-1], paused

    yield make
    for session in made:
        await session.close()


async def test_delete_between_a_fills_check_and_its_write(
    two_sessions: Pair, raw_cluster: RedisCluster
) -> None:
    """A fill whose lease check passed before a delete removes what it wrote after it."""
    reader, writer, store = two_sessions("fill_absent")
    await reader.fallback.put_many(Person._meta, ["a"], [Person(id="a", name="old")])
    read = await _in_the_gap(
        store, Person.objects.using(reader).get("a"), Person.objects.using(writer).delete("a")
    )
    assert read.name == "old"
    assert not raw_cluster.exists(b"person:a")
    assert raw_cluster.get(b"person:not-found:a") == b"1"
    with pytest.raises(EntityNotFoundError):
        await Person.objects.using(reader).get("a")


async def test_add_between_a_fills_check_and_its_write(
    two_sessions: Pair, raw_cluster: RedisCluster
) -> None:
    """A fill whose check passed before an add writes nothing: the new hash is already there."""
    reader, writer, store = two_sessions("fill_absent")
    await reader.fallback.put_many(Person._meta, ["a"], [Person(id="a", name="old")])
    await _in_the_gap(
        store,
        Person.objects.using(reader).get("a"),
        Person.objects.using(writer).add(Person(id="a", name="new")),
    )
    assert raw_cluster.hget(b"person:a", b"name") == b"new"
    assert not raw_cluster.exists(b"person:not-found:a")


async def test_remove_between_a_set_fills_check_and_its_write(
    two_sessions: Pair, raw_cluster: RedisCluster
) -> None:
    """A set fill overtaken by a member removal deletes the set it wrote."""
    reader, writer, store = two_sessions("fill_absent")
    await reader.fallback.add_members(Ranking._meta, "b", [("ann", 1.0), ("bob", 2.0)], None)
    await _in_the_gap(
        store,
        Ranking.objects.using(reader).get("b"),
        Ranking.objects.using(writer).remove("b", "bob"),
    )
    assert not raw_cluster.exists(b"ranking:b")
    assert [r.player for r in await Ranking.objects.using(reader).get("b")] == ["ann"]


async def test_add_between_a_set_fills_check_and_its_write(
    two_sessions: Pair, raw_cluster: RedisCluster
) -> None:
    """A set fill that missed a new member, landing after the add, deletes its partial set."""
    reader, writer, store = two_sessions("fill_absent")
    await reader.fallback.add_members(Ranking._meta, "b", [("ann", 1.0)], None)
    await _in_the_gap(
        store,
        Ranking.objects.using(reader).get("b"),
        Ranking.objects.using(writer).add(Ranking(board="b", player="bob", points=2)),
    )
    assert not raw_cluster.exists(b"ranking:b")
    assert [r.player for r in await Ranking.objects.using(reader).get("b")] == ["ann", "bob"]


async def test_add_between_a_set_creators_check_and_its_write(
    two_sessions: Pair, raw_cluster: RedisCluster
) -> None:
    """A writer creating a set deletes it when another add landed after its claim check."""
    creator, other, store = two_sessions("add_members")
    await _in_the_gap(
        store,
        Ranking.objects.using(creator).add(Ranking(board="b", player="ann", points=1)),
        Ranking.objects.using(other).add(Ranking(board="b", player="bob", points=2)),
    )
    assert not raw_cluster.exists(b"ranking:b")
    assert not raw_cluster.exists(b"ranking:not-found:b")
    assert [r.player for r in await Ranking.objects.using(creator).get("b")] == ["ann", "bob"]
    assert raw_cluster.zrange(b"ranking:b", 0, -1) == [b"ann", b"bob"]


@pytest.mark.parametrize("pause", ["replace", "release"])
async def test_an_add_overtaken_between_its_check_and_its_release_drops_its_copy(
    two_sessions: Pair, raw_cluster: RedisCluster, pause: str
) -> None:
    """An add whose claim check passed, paused before its K write or its release while
    another add claims, commits and writes: the first drops K, and a read fills the
    fallback's value (the second add's)."""
    first, second, store = two_sessions(pause)
    for session in (first, second):  # connected and past the restart check, unpaused
        await session.redis(session.memory.ping)
    await _in_the_gap(
        store,
        Person.objects.using(first).add(Person(id="a", name="first")),
        Person.objects.using(second).add(Person(id="a", name="second")),
    )
    assert not raw_cluster.exists(b"person:a")
    assert not raw_cluster.exists(b"person:not-found:a")
    assert (await Person.objects.using(first).get("a")).name == "second"
    assert raw_cluster.hget(b"person:a", b"name") == b"second"
