"""``redis+sentinel://``, ``rediss+sentinel://``: the Redis side on the master a
Redis Sentinel deployment names.

The store is the single-node one (``single.RedisStore``): the same scripts, one
round trip each, on a link (``wire.sentinel.SentinelLink``) whose connections go
to the current master. Its ping, the breaker's probe while Redis is out, asks
the sentinels first, so a session finds the promoted replica at its next probe.
A promoted replica has its own run_id: the session's restart check (``restarts``)
deletes the copies it replicated, which may be older than acknowledged writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from dbdaora.backends.redis import operations as ops
from dbdaora.backends.redis.protocol import RedisSide
from dbdaora.backends.redis.single import RedisStore, SingleKeyOperations
from dbdaora.backends.redis.wire.sentinel import SentinelLink
from dbdaora.exceptions import BackendError


class SentinelStore(RedisStore):
    """The Redis side on a Sentinel deployment's master.

    Args:
        url: ``redis+sentinel://[[user]:password@]host1:port1,host2:port2/<master>/<db>``;
            ``rediss+sentinel://`` for TLS to the master; ``sentinel_password`` and
            ``sentinel_username`` in the query for the sentinels.
        autopipeline: batch the commands of one event-loop iteration into one
            round trip (the default).
        options: redis-py client options for the data nodes, over the URL's.

    Raises:
        ConfigurationError: the URL does not parse, or names no sentinel or no master.
    """

    def __init__(self, url: str, *, autopipeline: bool = True, **options: Any) -> None:
        self._sentinel = self._node = SentinelLink(url, autopipeline=autopipeline, options=options)
        SingleKeyOperations.__init__(self, self._sentinel, autopipeline=autopipeline)

    async def ping(self) -> None:
        await self._sentinel.follow_master()
        try:
            await self._sentinel.run(ops.ping())
        except BackendError as exc:
            # The first connection to a new master fails once, so that calls see
            # the move (``MasterConnection``); a probe, which only asks whether Redis
            # answers, asks again. The session checks for a restart all the same:
            # it does after any failed call.
            if type(exc.__cause__) is not RedisError:
                raise
            await self._sentinel.run(ops.ping())


if TYPE_CHECKING:
    _conforms: type[RedisSide] = SentinelStore
