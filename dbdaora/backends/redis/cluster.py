"""``redis+cluster://``, ``rediss+cluster://``: Redis Cluster, with redis-py's asyncio client.

The URL lists nodes to discover the cluster from (any reachable one will do),
with the single-node URL's password, TLS and query options:
``redis+cluster://[[user]:password@]host1:port1,host2:port2[?socket_timeout=2]``.
MOVED and ASK redirects are followed by the client. A node that is down, a
timeout, or CLUSTERDOWN is retried once after re-reading the slot map, then
raised as ``BackendError``: with the default timeouts, within seconds.

Why the writes are separate commands, and in which order
---------------------------------------------------------
An entity's key K (``<key_name>:<parts>``) and its marker M
(``<key_name>:not-found:<parts>``) hash to different slots, often on different
masters, so no MULTI or script can hold both: every command here touches one
key. The order of the commands keeps what the lease protocol of
``dbdaora.lease`` promises, from two rules:

1. A fill writes K only where K is absent, and only between two checks that M
   still holds its lease token: ``GET M`` equals the token, then the K script,
   then "delete M if it still holds the token". When that last check fails, a
   write came in between, and the fill deletes the K it wrote. Every write
   changes M and tokens are unique, so a write whose M command lands after the
   first check is seen by the second.
2. A write whose K command leaves nothing a fill could collide with (DEL K,
   ZREM, ZADD to a set Redis does not hold) changes M *before* K. A hash add
   writes K first (the new hash itself stops any fill), then deletes M.

What follows, for a fill whose fallback read is older than a racing write W:

- Hash ``add`` (K replaced, then M deleted): the fill's K write lands before
  W's (and is replaced) or after it (K exists: nothing written). Once ``add``
  returns, no fill can bring the old hash back, as on one node; the one gap is
  K expiring or being evicted in the microseconds before a stalled fill lands,
  and then that fill's second check deletes it again.
- ``delete`` (SET M 1, then DEL K) and ``remove`` (DEL M, then ZREM K): a fill
  that passed its first check before W's M command writes K either before W's
  K command, which undoes it, or after it, and then its second check (after
  W's M command) fails and it deletes K. The end state is W's; in the second
  case the old entity or member is visible for the time between the fill's
  two commands.
- Sorted-set ``add``: the core claims M (SET M token) before its fallback
  write, so any fill whose read missed the new members fails its checks. The
  writer then deletes M and adds to K only where K exists; a set Redis holds
  is complete, so it stays complete. When the fallback write created the set,
  the writer instead checks that its claim still stands, creates K from its
  members, and releases M with "delete M if it still holds my token"; when
  that fails, another write came in between (its members may be missing), and
  the writer deletes K. Until that release, or a racing fill's second check,
  a set without the newest members can be visible; it is never left so: the
  next read fills it whole from the fallback.

Failures keep the order's intent: a hash add that fails after K was written
leaves the new hash; a delete or remove that fails after M was changed leaves
any fill in flight to delete its own K write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException

from dbdaora.backends.redis.protocol import HashValue, Members, hgetall_then_lease
from dbdaora.backends.redis.single import RedisStore, Script, flat_hash, flat_members
from dbdaora.backends.redis.wire.pipelining import AutoPipeline, Direct, Operation, Transport
from dbdaora.exceptions import ConfigurationError
from dbdaora.lease import NOT_FOUND

# Seconds; a URL's socket_timeout / socket_connect_timeout wins. Bounded so a
# hung node becomes a BackendError the breaker can count, not a stuck request.
SOCKET_TIMEOUT = 2.0
CONNECT_TIMEOUT = 1.0
# Once more after re-reading the slot map: enough to follow a failover that has
# already happened, few enough that a dead node fails fast.
RETRIES = 1

# KEYS: K. ARGV: ttl (0 = none), command, then its field/value or score/member pairs.
# Pairs go in slices: Lua's unpack() has a stack limit far below a large set.
FILL_ABSENT = Script("""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 3, #ARGV, 1000 do
  redis.call(ARGV[2], KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[1] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
""")

# KEYS: M. ARGV: token. Delete the marker if it still holds the token.
RELEASE = Script("""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
""")

# KEYS: K. ARGV: ttl (0 = none), command, then its field/value or score/member pairs.
REPLACE = Script("""
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 1000 do
  redis.call(ARGV[2], KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[1] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
""")

# KEYS: K. ARGV: ttl (0 = none), max_size (0 = none), create (1/0), then score/member
# pairs. Returns 0 (no set, none made), 1 (added to the set), 2 (created it).
ADD_MEMBERS = Script("""
local existed = redis.call('EXISTS', KEYS[1]) == 1
if not existed and ARGV[3] ~= '1' then return 0 end
for i = 4, #ARGV, 1000 do
  redis.call('ZADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[2] ~= '0' then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[2]) - 1) end
if ARGV[1] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if existed then return 1 end
return 2
""")
_CREATED = 2


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The (host, port) of each listed node, and the client options of the URL.

    Raises:
        ValueError: a node is not ``host:port``, or the URL names a database other than 0.
    """
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    nodes = []
    for address in hosts.split(","):
        host, colon, port = address.rpartition(":")
        if not colon or not host or not port.isdigit():
            raise ValueError(f"{address!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    scheme = "rediss" if parts.scheme.startswith("rediss") else "redis"
    first = f"{userinfo}{at}{nodes[0][0]}:{nodes[0][1]}"
    options: dict[str, Any] = dict(
        parse_url(urlunsplit((scheme, first, parts.path, parts.query, "")))
    )
    options.pop("host", None)
    options.pop("port", None)
    if options.pop("db", 0):
        raise ValueError("a cluster has only database 0")
    if options.pop("connection_class", None) is SSLConnection:
        options["ssl"] = True
    return nodes, options


class ClusterStore(RedisStore):
    """The Redis side on a Redis Cluster: every command touches one key.

    Everything that reads or touches one key is the single-node store's; the
    writes that span an entity's key and its marker are the ordered sequences the
    module docstring explains. Auto-pipelining batches across slots: redis-py's
    cluster pipeline splits each batch by node.
    """

    # RedisClusterException (not a RedisError) when no node answers or a slot has
    # no master; AttributeError when redis-py closes the connections of commands
    # in flight as it handles CLUSTERDOWN for another one (redis-py 8.1).
    DRIVER_ERRORS: ClassVar[tuple[type[BaseException], ...]] = (
        *RedisStore.DRIVER_ERRORS,
        RedisClusterException,
        AttributeError,
    )

    def __init__(self, url: str, *, autopipeline: bool = True, **options: Any) -> None:
        self._nodes: list[tuple[str, int]] = []
        self._mapped: Any = None
        super().__init__(url, autopipeline=autopipeline, **options)

    def _client_options(self, options: dict[str, Any]) -> dict[str, Any]:
        try:
            self._nodes, parsed = parse_cluster_url(self._dsn)
        except ValueError as exc:
            raise ConfigurationError(f"bad Redis Cluster URL {self.url!r}: {exc}") from exc
        return {
            "protocol": 2,
            "decode_responses": False,
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": CONNECT_TIMEOUT,
            **parsed,
            **options,
        }

    def _open(self) -> Transport:
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in self._nodes],
            retry=Retry(NoBackoff(), RETRIES),
            **self._options,
        )
        return AutoPipeline(client) if self.autopipeline else Direct(client)

    async def _run(self, operation: Operation) -> Any:
        await self._map_slots()
        return await super()._run(operation)

    async def _run_all(self, operations: list[Operation]) -> list[Any]:
        await self._map_slots()
        return await super()._run_all(operations)

    async def _map_slots(self) -> None:
        """Read the slot map before a new client's first command.

        redis-py's cluster client, when many commands start at once on a fresh
        client, can disconnect connections other commands are using while it maps
        the cluster.
        """
        transport = self._transport()
        assert isinstance(transport, AutoPipeline | Direct)
        client = transport.client
        if self._mapped is client:
            return
        try:
            await client.initialize()
        except self.DRIVER_ERRORS as exc:
            raise self._failed(exc) from exc
        self._mapped = client

    # K and M hash to different slots: no script holds both.
    def leases_on_read(self) -> bool:
        return False

    async def hgetall_or_lease(
        self, key: bytes, marker: bytes, token: bytes
    ) -> tuple[dict[bytes, bytes], bytes | None]:
        return await hgetall_then_lease(self, key, marker, token)

    def _script(self, script: Script, keys: list[bytes], args: list[Any]) -> Operation:
        # Cluster pipelines refuse EVALSHA (a node may never have seen the script);
        # EVAL carries the source, and each node keeps it compiled after the first.
        return lambda target: target.eval(script.source, len(keys), *keys, *args)

    async def _fill(self, writes: Sequence[tuple[bytes, bytes, list[Any]]], token: bytes) -> None:
        """Write each (K, M, fill args) under rule 1 of the module docstring."""
        held = await self._run_all([_get(marker) for _, marker, _ in writes])
        writes = [write for write, value in zip(writes, held, strict=True) if value == token]
        if not writes:
            return
        wrote = await self._run_scripts(FILL_ABSENT, [([key], args) for key, _, args in writes])
        kept = await self._run_scripts(RELEASE, [([marker], [token]) for _, marker, _ in writes])
        overtaken = [
            key
            for (key, _, _), written, still in zip(writes, wrote, kept, strict=True)
            if written and not still
        ]
        if overtaken:
            await self.evict(overtaken)

    async def fill_hashes(
        self, items: Sequence[tuple[bytes, bytes, HashValue]], token: bytes, ttl: int | None
    ) -> None:
        await self._fill(
            [(key, marker, [ttl or 0, "HSET", *flat_hash(value)]) for key, marker, value in items],
            token,
        )

    async def fill_sorted_set(
        self, key: bytes, marker: bytes, members: Members, token: bytes, ttl: int | None
    ) -> None:
        await self._fill([(key, marker, [ttl or 0, "ZADD", *flat_members(members)])], token)

    async def put_hashes(
        self, items: Sequence[tuple[bytes, bytes, HashValue]], ttl: int | None
    ) -> None:
        await self._run_scripts(
            REPLACE, [([key], [ttl or 0, "HSET", *flat_hash(value)]) for key, _, value in items]
        )
        await self.evict([marker for _, marker, _ in items])

    async def put_sorted_set(
        self, key: bytes, marker: bytes, members: Members, ttl: int | None
    ) -> None:
        if not members:
            # Nothing left in K to stop a fill: M first, as for a delete (rule 2).
            await self.evict([marker])
            await self.evict([key])
            return
        # As a hash add: the whole new set in K first (it stops any fill), then M.
        await self._run_scripts(REPLACE, [([key], [ttl or 0, "ZADD", *flat_members(members)])])
        await self.evict([marker])

    async def add_members(
        self,
        key: bytes,
        marker: bytes,
        members: Members,
        ttl: int | None,
        max_size: int | None,
        *,
        token: bytes,
        created: bool,
    ) -> None:
        held = created and (await self._run(_get(marker))) == token
        if not held:
            await self.evict([marker])
        args = [ttl or 0, max_size or 0, int(held), *flat_members(members)]
        (outcome,) = await self._run_scripts(ADD_MEMBERS, [([key], args)])
        if held:
            (still,) = await self._run_scripts(RELEASE, [([marker], [token])])
            if outcome == _CREATED and not still:
                await self.evict([key])

    async def remove_members(self, key: bytes, marker: bytes, members: Sequence[str]) -> None:
        await self.evict([marker])
        await self._run(lambda target: target.zrem(key, *members))

    async def evict(self, keys: Sequence[bytes]) -> None:
        # One DEL a key: keys of several slots cannot share a command.
        await self._run_all([_delete(key) for key in keys])

    async def delete(self, key: bytes, marker: bytes, ttl: int | None) -> None:
        await self._run(lambda target: target.set(marker, NOT_FOUND, ex=ttl))
        await self.evict([key])


def _get(key: bytes) -> Operation:
    return lambda target: target.get(key)


def _delete(key: bytes) -> Operation:
    return lambda target: target.delete(key)
