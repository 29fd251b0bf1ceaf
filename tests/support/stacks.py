"""The stacks the contract suites run over: a Redis side and a fallback each."""

from __future__ import annotations

import pytest

# Each Redis-side backend runs the contract; each fallback joins it with memory://.
# "tracked" is redis:// whose connection tracks keys, so speaks RESP3.
# An entry is (Redis-side fixture, fallback fixture): fixtures named <name>_store
# and <name>_fallback.
REDIS_SIDES = ["memory", "redis", "cluster", "shards"]
STACKS = [
    pytest.param(("memory", "dict"), id="memory"),
    pytest.param(("redis", "dict"), id="redis"),
    pytest.param(("tracked", "dict"), id="redis-tracked"),  # RESP3, CLIENT TRACKING
    pytest.param(("cluster", "dict"), id="cluster"),
    pytest.param(("shards", "dict"), id="shards"),  # 0.27's client-side hash ring
    pytest.param(("memory", "datastore"), id="memory-datastore"),
    pytest.param(("redis", "datastore"), id="redis-datastore"),
    pytest.param(("memory", "sqlite"), id="memory-sqlite"),
    pytest.param(("redis", "postgres"), id="redis-postgres"),
]
