"""Every Lua script the Redis stores run, built from the constants of ``dbdaora.lease``.

A script runs atomically on one node, as a MULTI block would, yet is a single
command that auto-pipelining can batch with others. ``single`` runs the scripts
that span an entity's key K and its marker M; ``cluster``, where K and M hash to
different slots, runs the single-key ones (``FILL_ABSENT`` and after). Each
script lists its KEYS and ARGV; ``InProcessRedis`` mirrors the single-node ones
step by step, each method naming the script it follows.

Conventions: a ttl of ``0`` means "no expiry"; a flag is ``1`` or ``0``; pairs
are field/value (HSET) or score/member (ZADD), flattened (``flat_hash``,
``flat_members``) and sent to Redis in slices, since Lua's ``unpack()`` has a
stack limit far below a large set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from dbdaora.backends.redis.protocol import HashValue, Members
from dbdaora.lease import LEASE_SECONDS, NOT_FOUND

SLICE = 1000
"""Arguments per Redis call when a script passes on a long ARGV."""


class Script:
    """A Lua script: its source, and the SHA1 a server that loaded it knows it by."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


def flat_hash(value: HashValue) -> list[Any]:
    """A hash as the field/value pairs of a script's ARGV."""
    return [item for pair in value.items() for item in pair]


def flat_members(members: Members) -> list[Any]:
    """Sorted-set members as the score/member pairs of a script's ARGV."""
    return [item for member, score in members for item in (score, member)]


def _lua_string(value: bytes) -> str:
    text = value.decode()
    assert "'" not in text and "\\" not in text, "a plain Lua string literal"
    return f"'{text}'"


def _in_slices(command: str, first: int) -> str:
    """Lua that runs ``command`` on KEYS[1] with ARGV from ``first`` on, a slice at a time.

    Args:
        command: a Lua expression for the command's name (``'HSET'``, ``ARGV[3]``).
        first: the index of the first ARGV item to pass on.
    """
    return (
        f"for i = {first}, #ARGV, {SLICE} do\n"
        f"  redis.call({command}, KEYS[1], unpack(ARGV, i, math.min(i + {SLICE - 1}, #ARGV)))\n"
        "end"
    )


def _mark_not_found(marker: str, ttl: str) -> str:
    """Lua that sets ``marker`` to ``NOT_FOUND``, expiring after ``ttl`` unless it is '0'."""
    return (
        f"if {ttl} == '0' then\n"
        f"  redis.call('SET', {marker}, {_lua_string(NOT_FOUND)})\n"
        "else\n"
        f"  redis.call('SET', {marker}, {_lua_string(NOT_FOUND)}, 'EX', {ttl})\n"
        "end"
    )


# -- one node: K and M in one script -------------------------------------------------

FILL = Script(f"""
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[1])
{_in_slices("ARGV[3]", 4)}
if ARGV[2] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
""")
"""The lease holder's fill: K rewritten, M dropped, if M still holds the token.

KEYS: K, M. ARGV: token, ttl, command (``HSET``, ``ZADD``, or ``SET`` and a flag's
value), then its pairs. Returns 1 when it wrote, 0 when the lease was gone.
"""

HGETALL_OR_LEASE = Script(f"""
local found = redis.call('HGETALL', KEYS[1])
if #found > 0 then return found end
local before = redis.call('SET', KEYS[2], ARGV[1], 'NX', 'GET', 'EX', {LEASE_SECONDS})
if before then return {{before}} end
return {{}}
""")
"""A whole hash, or on a miss the lease taken on its marker.

KEYS: K, M. ARGV: token. Returns the hash (an even count of items); on a miss,
M's value before as a list of one, or an empty list when this call took the lease.
"""

GET_OR_LEASE = Script(f"""
local found = redis.call('GET', KEYS[1])
if found then return {{found}} end
local before = redis.call('SET', KEYS[2], ARGV[1], 'NX', 'GET', 'EX', {LEASE_SECONDS})
if before then return {{false, before}} end
return {{}}
""")
"""A string (a flag's ``1`` or ``0``), or on a miss the lease taken on its marker.

KEYS: K, M. ARGV: token. Returns K's value as a list of one; on a miss, nil
then M's value before, or an empty list when this call took the lease.
"""

FILL_MISSING = Script(f"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
{_mark_not_found("KEYS[1]", "ARGV[2]")}
return 1
""")
"""The lease holder's fill when the fallback had nothing: M becomes ``NOT_FOUND``.

Also a delete's M write on a cluster, under the writer's claim.
KEYS: M. ARGV: token, ttl. Returns 1 when it wrote, 0 when M held something else.
"""

_UNCLAIMED = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 0
end"""
"""A write's first check: where M no longer holds the writer's claim, drop K and M, done."""

PUT_HASH = Script(f"""{_UNCLAIMED}
redis.call('DEL', KEYS[1], KEYS[2])
{_in_slices("'HSET'", 3)}
if ARGV[2] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
""")
"""A hash add under the writer's claim: K replaced by the new hash, M dropped.

KEYS: K, M. ARGV: token, ttl, then field/value pairs. Returns 1 when it wrote,
0 when the claim was gone (K and M dropped).
"""

PUT_STRING = Script(f"""{_UNCLAIMED}
redis.call('DEL', KEYS[2])
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2])
end
return 1
""")
"""A flag written under the writer's claim: K set to the value (``1`` for an add,
``0`` for a delete) with its TTL, M dropped.

KEYS: K, M. ARGV: token, ttl, value. Returns 1 when it wrote, 0 when the claim
was gone (K and M dropped).
"""

PUT_SET = Script(f"""{_UNCLAIMED}
redis.call('DEL', KEYS[1], KEYS[2])
{_in_slices("'ZADD'", 3)}
if #ARGV > 2 and ARGV[2] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
""")
"""A whole sorted set replaced under the writer's claim: K rewritten (gone, with
no pairs), M dropped.

KEYS: K, M. ARGV: token, ttl, then score/member pairs. Returns 1 when it wrote,
0 when the claim was gone (K and M dropped).
"""

ADD_MEMBERS = Script(f"""{_UNCLAIMED}
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 0 and ARGV[4] ~= '1' then return 0 end
{_in_slices("'ZADD'", 5)}
if ARGV[3] ~= '0' then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1) end
if ARGV[2] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
""")
"""A sorted-set add under the writer's claim: M dropped, then the members added.

Where Redis does not hold the set, it is created only when the fallback write
created it (``created``); otherwise the next read fills it whole.
KEYS: K, M. ARGV: token, ttl, max_size (``0``: none), created, then score/member
pairs. Returns 1 when it added, 0 when it left the set to the next read or the
claim was gone (K and M dropped).
"""

REMOVE_MEMBERS = Script(f"""{_UNCLAIMED}
{_in_slices("'ZREM'", 2)}
redis.call('DEL', KEYS[2])
return 1
""")
"""Members removed from K under the writer's claim, M dropped.

KEYS: K, M. ARGV: token, then the members. Returns 1 when it removed, 0 when
the claim was gone (K and M dropped).
"""

DELETE = Script(f"""{_UNCLAIMED}
redis.call('DEL', KEYS[1])
{_mark_not_found("KEYS[2]", "ARGV[2]")}
return 1
""")
"""An entity deleted under the writer's claim: K dropped, M set to ``NOT_FOUND``.

KEYS: K, M. ARGV: token, ttl (of M). Returns 1 when it marked, 0 when the claim
was gone (K and M dropped).
"""

# -- a cluster: one key a script -------------------------------------------------------

FILL_ABSENT = Script(f"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
{_in_slices("ARGV[2]", 3)}
if ARGV[1] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
""")
"""A fill's K write on a cluster: only where K is absent.

KEYS: K. ARGV: ttl, command (``HSET``, ``ZADD``, or ``SET`` and a flag's value),
then its pairs. Returns 1 when it wrote, 0 when K existed.
"""

RELEASE = Script("""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
""")
"""M deleted if it still holds the token.

KEYS: M. ARGV: token. Returns 1 when it did, 0 when M held something else.
"""

REPLACE = Script(f"""
redis.call('DEL', KEYS[1])
{_in_slices("ARGV[2]", 3)}
if ARGV[1] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
""")
"""K replaced whole.

KEYS: K. ARGV: ttl, command (``HSET``, ``ZADD``, or ``SET`` and a flag's value),
then its pairs.
"""

ADD_MEMBERS_NO_MARKER = Script(f"""
if redis.call('EXISTS', KEYS[1]) == 0 and ARGV[3] ~= '1' then return 0 end
{_in_slices("'ZADD'", 4)}
if ARGV[2] ~= '0' then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[2]) - 1) end
if ARGV[1] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
""")
"""Members added to K, which is created only when asked to; M is left to the caller.

KEYS: K. ARGV: ttl, max_size (``0``: none), create, then score/member pairs.
Returns 1 when it added, 0 when there was no set and it made none.
"""


# -- restarts: the epoch and the sweep (one node) --------------------------------------

_RUN_ID = "string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')"

EPOCHS = Script(f"""
local persistence = redis.call('INFO', 'persistence')
local loaded = string.match(persistence, 'rdb_last_load_keys_loaded:(%d+)')
local promoted = string.match(redis.call('INFO', 'replication'), 'second_repl_offset:(%-?%d+)')
local restored = (loaded == nil or loaded ~= '0'
  or string.match(persistence, 'aof_enabled:(%d)') ~= '0' or promoted ~= '-1') and 1 or 0
return {{{_RUN_ID}, restored, redis.call('HGETALL', KEYS[1])}}
""")
"""KEYS: the epoch hash. Returns the server's run_id, 1 when its data may predate
it (``restored_from_disk``), and the hash's pairs."""

SWEEP_START = Script(f"""
if {_RUN_ID} ~= ARGV[2] then return 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3]) then return 1 end
return 0
""")
"""KEYS: the sweep lock. ARGV: token, instance, seconds. 1 when the lock is taken."""

SWEEP_STEP = Script(f"""
if {_RUN_ID} ~= ARGV[2] or redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
redis.call('EXPIRE', KEYS[1], ARGV[6])
local found = redis.call('SCAN', ARGV[3], 'MATCH', ARGV[4], 'COUNT', ARGV[5])
for i = 1, #found[2], {SLICE} do
  redis.call('UNLINK', unpack(found[2], i, math.min(i + {SLICE - 1}, #found[2])))
end
return found[1]
""")
"""One SCAN step of a sweep, its keys unlinked, the lock renewed.

KEYS: the sweep lock. ARGV: token, instance, cursor, pattern, count, seconds.
Returns the next cursor ('0' at the end), or nil when the lock or the instance is gone.
"""

SWEEP_END = Script(f"""
if {_RUN_ID} ~= ARGV[2] or redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 3, #ARGV do redis.call('HSET', KEYS[2], ARGV[i], ARGV[2]) end
redis.call('DEL', KEYS[1])
return 1
""")
"""KEYS: the sweep lock, the epoch hash. ARGV: token, instance, the swept prefixes.

Records each prefix swept under the instance and releases the lock; 1 when it did.
"""

UNLINK_SCANNED = Script(f"""
local found = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
for i = 1, #found[2], {SLICE} do
  redis.call('UNLINK', unpack(found[2], i, math.min(i + {SLICE - 1}, #found[2])))
end
return found[1]
""")
"""One SCAN step of a sweep on one of several servers, its keys unlinked (the lock
and the instance are checked apart: they may live on another server).

ARGV: cursor, pattern, count. Returns the next cursor ('0' at the end).
"""


def restored_from_disk(info: Mapping[str, Any]) -> bool:
    """``EPOCHS``'s ``restored``, from a parsed ``INFO persistence replication``: keys
    loaded from an RDB at startup, an AOF on, or a replica promoted (its data came
    from a master it may lag)."""
    loaded = info.get("rdb_last_load_keys_loaded")
    return (
        loaded is None
        or int(loaded) > 0
        or int(info.get("aof_enabled", 0)) != 0
        or int(info.get("second_repl_offset", -1)) != -1
    )


def glob_escape(prefix: bytes) -> bytes:
    """``prefix`` as a SCAN MATCH pattern that matches itself literally, then ``*``."""
    escaped = bytearray()
    for byte in prefix:
        if byte in b"*?[]\\":
            escaped += b"\\"
        escaped.append(byte)
    return bytes(escaped) + b"*"
