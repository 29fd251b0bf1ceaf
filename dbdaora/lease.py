"""The lease protocol: how a read-through fill and a write never undo each other.

Every entity has two Redis keys: its data key K (``<key_name>:<parts>``) and its
marker M (``<key_name>:not-found:<parts>``). M is in one of three states:

=========== ============================= ===========================================
state       M holds                       meaning
=========== ============================= ===========================================
absent      nothing                       K answers for itself; a reader that misses
                                          K may take the lease
not found   ``NOT_FOUND`` (with the TTL)  the fallback had nothing; reads answer
                                          "not found" without asking it
leased      a token (``LEASE_SECONDS``)   one reader, or a writer's claim, is between
                                          a fallback read and its Redis write
=========== ============================= ===========================================

The transitions, each one atomic on one node (a Lua script, see
``dbdaora.backends.redis.scripts``):

- **lease** (a reader missed K): ``SET M token NX GET EX LEASE_SECONDS``. The value
  before tells the reader what to do: nothing, so it holds the lease and will fill;
  ``NOT_FOUND``, so the entity is nowhere; another token, so another reader fills and
  this one reads the fallback without filling.
- **fill** (the lease holder's fallback read came back): only if M still holds
  its token, drop M and write K with the TTL, or set M to ``NOT_FOUND`` when the
  fallback had nothing.
- **write** (``add``, ``delete``, ``remove``, after the fallback has it): replace or
  delete K and delete M, or set M to ``NOT_FOUND`` for a delete, in one step. A
  fill whose read is older than the write then finds its token gone.
- **claim** (a sorted-set ``add`` before its fallback write): set M to the
  writer's token whatever it held, ending readers' leases; the writer may create
  the set in Redis afterwards only if its claim still stands.

Tokens are unique across processes (``lease_token``), so a token seen in M
always names one reader or writer. A lease lapses after ``LEASE_SECONDS``: a
reader that dies halfway blocks no one for longer.

Redis Cluster cannot hold K and M in one script (they hash to different slots);
``dbdaora.backends.redis.cluster`` keeps the same promises with ordered
single-key steps and says why they suffice.
"""

from __future__ import annotations

import itertools
import os

NOT_FOUND = b"1"
"""M's value for "the fallback has no such entity" (dbdaora 0.27's marker)."""

LEASE_PREFIX = b"lease:"
"""Every token starts with it, so no token can be mistaken for ``NOT_FOUND``."""

LEASE_SECONDS = 5
"""How long a lease or a claim holds before it lapses by itself."""

_token_prefix = LEASE_PREFIX + os.urandom(6).hex().encode() + b":"
_token_numbers = itertools.count()


def lease_token() -> bytes:
    """A token no other reader or writer, in this process or another, holds."""
    return _token_prefix + str(next(_token_numbers)).encode()


def is_lease(value: bytes | None) -> bool:
    """Whether a marker's value is a lease (or claim) token rather than ``NOT_FOUND``."""
    return value is not None and value.startswith(LEASE_PREFIX)
