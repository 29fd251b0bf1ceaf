"""A circuit breaker per master of a Redis Cluster (or server of 0.27's shards): one
master's outage is its keys' alone.

The session's own Redis breaker counts what fails for the whole cluster
(CLUSTERDOWN, no node answering). ``NodeBreakers`` is the gate the cluster
store's link (and the shards') asks around each command to one master
(``NodeGate``): a master whose breaker is open is refused at once, with no round
trip, and only its keys are answered from the fallback; its breaker pings it every
``probe_interval`` seconds and closes at the first answer.

Repair, node by node: a master whose connection broke, one that comes back (its
breaker closes) or one that appears (a replica promoted in a failed master's
place, seen in the slot map) is *pending*:
refused until a repair has run after that, which checks the run_ids
(``restarts``: a promoted replica may hold copies older than acknowledged
writes) and deletes the recorded keys. The repair itself runs with
``REPAIRING`` set, and reaches pending masters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar

from aiobreaker import CircuitBreakerError
from aiobreaker.state import CircuitBreakerState

from dbdaora.exceptions import BackendError, NodeUnavailableError
from dbdaora.session.breakers import Breaker, breaker_state
from dbdaora.session.deadlines import Deadlines
from dbdaora.settings import BreakerOptions

_CLOSED = CircuitBreakerState.CLOSED
_OPEN = CircuitBreakerState.OPEN

REPAIRING: ContextVar[bool] = ContextVar("dbdaora_repairing", default=False)
"""Set in a repair's task (and the tasks it starts): pending masters answer it."""


class NodeBreakers:
    """A breaker per cluster master, made on the master's first failure.

    Args:
        options: the session's breaker options, for each master's breaker.
        url: the cluster's URL, password masked, for errors and logs.
        node_of: the master serving a key (the store's ``node_of``).
        probe: a ping of one master (the store's ``ping_node``).
        deadlines: the session's time bound on Redis calls, whose expiry in a
            command to one master counts as that master's failure.
        on_pending: called when a master becomes pending (a repair is due).
    """

    __slots__ = (
        "_breakers",
        "_deadlines",
        "_known",
        "_on_pending",
        "_options",
        "_probe",
        "_url",
        "node_of",
        "pending",
    )

    def __init__(
        self,
        options: BreakerOptions,
        url: str,
        node_of: Callable[[bytes], str | None],
        probe: Callable[[str], Awaitable[None]],
        deadlines: Deadlines | None,
        on_pending: Callable[[], None],
    ) -> None:
        self._options = options
        self._url = url
        self.node_of = node_of
        self._probe = probe
        self._deadlines = deadlines
        self._on_pending = on_pending
        self._breakers: dict[str, Breaker] = {}
        self._known: set[str] | None = None
        self.pending: set[str] = set()

    def _breaker(self, node: str) -> Breaker:
        breaker = self._breakers.get(node)
        if breaker is None:

            async def probe() -> None:
                await self._probe(node)

            breaker = self._breakers[node] = Breaker(
                self._options,
                f"memory {self._url} node {node}",
                probe,
                on_close=lambda: self._pend(node),
            )
        return breaker

    def _pend(self, node: str) -> None:
        self.pending.add(node)
        self._on_pending()

    def check(self, node: str) -> None:
        if node in self.pending and not REPAIRING.get():
            raise NodeUnavailableError(
                f"Redis node {node} is back or new; its keys wait for the repair",
                url=self._url,
                node=node,
            )
        breaker = self._breakers.get(node)
        if breaker is None:
            known = self._known
            if known is not None and node not in known:
                known.add(node)  # a replica promoted, or a master added
                if not REPAIRING.get():
                    self._pend(node)
                    self.check(node)
            return
        if breaker.current_state is _OPEN:
            if breaker.refusing():
                raise NodeUnavailableError(
                    f"Redis node {node} unavailable: {breaker.refusal()}",
                    url=self._url,
                    node=node,
                )
            breaker.half_open()  # reset_timeout over with no probe's answer: calls try

    def refuses(self, node: str) -> bool:
        breaker = self._breakers.get(node)
        return breaker is not None and breaker.refusing()

    def answered(self, node: str) -> None:
        breaker = self._breakers.get(node)
        if breaker is not None and (breaker.current_state is not _CLOSED or breaker.fail_counter):
            breaker.count_success()

    def failed(self, node: str, error: BackendError, *, lost: bool = False) -> BackendError:
        if lost:
            # A broken connection: the master may have restarted, from an older
            # snapshot, and answer the next command; a repair checks it first.
            self._pend(node)
        breaker = self._breaker(node)
        try:
            breaker.count_failure(error)
        except CircuitBreakerError:
            message = f"{error.message}; {breaker.refusal()}"
        except BackendError:
            message = error.message
        return NodeUnavailableError(f"Redis node {node}: {message}", url=self._url, node=node)

    def expired(self, node: str) -> BackendError | None:
        deadlines, task = self._deadlines, asyncio.current_task()
        if deadlines is None or task is None or not deadlines.take_expired(task):
            return None
        return self.failed(
            node, BackendError(f"no answer within {deadlines.seconds}s", url=self._url)
        )

    def mapped(self, nodes: Sequence[str]) -> None:
        if self._known is None:
            self._known = set(nodes)

    def repaired(self, nodes: set[str]) -> None:
        """A repair that started when ``nodes`` were pending reached each of them."""
        self.pending.difference_update(nodes)

    def states(self) -> dict[str, str]:
        """Each master's breaker: ``closed``, ``open`` or ``half-open``; a closed one
        waiting for a repair, ``pending``."""
        states = {node: breaker_state(breaker) for node, breaker in self._breakers.items()}
        for node in self.pending:
            if states.get(node, "closed") == "closed":
                states[node] = "pending"
        return states

    async def stop(self) -> None:
        for breaker in self._breakers.values():
            await breaker.stop()
