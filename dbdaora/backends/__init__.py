"""The stores, in two families that never import each other's drivers.

- ``redis/``: the Redis side (``RedisSide``), where hot copies live with a TTL:
  ``InProcessRedis`` (``memory://``), ``RedisStore`` (one node) and
  ``ClusterStore``, the Lua scripts, and the wire code under ``redis/wire/``.
- ``fallback/``: the durable side (``FallbackStore``), where records last:
  ``DictFallback`` (``memory://``), ``SQLFallback`` and ``DatastoreFallback``,
  each with its storage layout beside it.

``urls`` maps each URL scheme to its store; ``zset`` holds Redis's sorted-set
rules that both families and the managers apply; ``loops`` ties a driver's
connections to their event loop. The two in-process stores are importable from
here; the others through their modules, which need their drivers.
"""

from dbdaora.backends.fallback.dict import DictFallback
from dbdaora.backends.fallback.protocol import FallbackStore
from dbdaora.backends.redis.inprocess import InProcessRedis
from dbdaora.backends.redis.protocol import RedisSide
from dbdaora.backends.urls import mask_url, open_fallback, open_redis_side

__all__ = [
    "DictFallback",
    "FallbackStore",
    "InProcessRedis",
    "RedisSide",
    "mask_url",
    "open_fallback",
    "open_redis_side",
]
