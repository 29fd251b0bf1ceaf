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
  ``NOT_FOUND``, so the entity is nowhere; another token, so another reader (or a
  writer) holds it, and this one reads the fallback without filling.
- **fill** (the lease holder's fallback read came back): only if M still holds
  its token, drop M and write K with the TTL, or set M to ``NOT_FOUND`` when the
  fallback had nothing.
- **claim** (every write, ``add``, ``delete``, ``remove``, ``replace``, before its
  fallback write): set M to the writer's token whatever it held, ending readers'
  leases and earlier writers' claims.
- **write** (after the fallback write): if M still holds the writer's token,
  replace or change K and drop M, or set M to ``NOT_FOUND`` for a delete;
  otherwise drop K and M both, and the next read fills from the fallback.

Why racing writers cannot leave Redis and the fallback apart. Call c the claim,
f the fallback commit and w the write step of a writer, with c < f < w. A
writer's write step writes only if no other claim landed between its c and its
w, since tokens are unique and a claim overwritten never comes back. Take two
writers A and B, A's claim first (c_A < c_B):

- c_B > w_A: A finished before B claimed, so f_A < f_B and B's step comes after
  A's; B's value or B's drop is what stays, both agreeing with the fallback.
- c_B < w_A: B's claim overwrote A's, so A's step finds another token and drops
  K and M. If B's step came first and wrote, A's drop removes it; if it comes
  after, M is gone (A dropped it) or holds a later claim, so B drops too. In
  either order Redis ends with no copy, whichever of f_A and f_B was last.

That holds for any mix of adds and deletes (a delete's "write" is ``NOT_FOUND``,
so Redis never says "not found" while the fallback holds the entity), and for
more writers pairwise. A failing step must drop M as well as K: were M left
holding B's claim, B's step would write B's value even when f_A came after f_B.

Readers: a fill writes only while M holds its lease. A claim ends every lease,
so a fill whose fallback read predates a write's commit finds its token gone.
A reader can lease only while M is absent, i.e. after some write step or fill
dropped M; its fallback read then comes after that step's commit. A writer
whose claim that step dropped (or that lapsed) finds no claim at its own step
and drops K and M, which ends the reader's lease (the fill writes nothing) or
removes what the fill wrote; a writer claiming after the lease ends it.

A claim lapses after ``LEASE_SECONDS`` like a lease: a writer whose fallback
write took longer finds no claim and drops K and M, which is always safe. A
write whose claim could not reach Redis (Redis unavailable) does not try its
step: its keys are recorded for repair (``dbdaora.session.guard``), as for any
write that Redis missed. The cost of all this is one more round trip per
write, the claim, and that two writes of one key racing leave Redis without a
copy until the next read fills it.

Tokens are unique across processes (``lease_token``), so a token seen in M
always names one reader or writer. A lease lapses after ``LEASE_SECONDS``: a
reader that dies halfway blocks no one for longer.

Flags (``dbdaora.managers.flags``) keep dbdaora 0.27's boolean layout in K: the
string ``1`` while the flag is set, ``0`` for the remembered miss, both with the
TTL, so that either version reads what the other wrote. Their not-found state
lives in K, then, not in M: a fill that found no record writes ``0`` into K (and
drops M) where a hash's fill sets M to ``NOT_FOUND``, and a delete's write step
writes ``0`` into K and drops M. M is still the lease and the claim, with the
transitions above, and each step changes K only while M holds its token, so
every argument above holds word for word with "K holds ``0``" for "M holds
``NOT_FOUND``". A reader takes ``0`` in K, or ``NOT_FOUND`` in M (0.27's
hash-style marker), as "not found"; an add's step overwrites a ``0`` with ``1``,
or drops K and M, so a ``0`` never outlives a write of the flag.

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
