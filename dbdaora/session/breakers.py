"""Circuit breakers that probe their store while open, and say what they refuse.

``Breaker`` is aiobreaker's breaker with two additions. While open it pings its
store in the background every ``probe_interval`` seconds, and closes as soon as
a ping is answered: service comes back within a probe interval of the store, not
after ``reset_timeout`` (which stays as the longest the breaker refuses calls
without a probe's answer; then one live call tries, as in aiobreaker). And it
words its refusals: ``refusal()`` names no aiobreaker internals, only when the
breaker opened, until when it refuses, and when the next probe goes.

The probe runs only while the breaker is open, in the event loop the breaker
opened in, each ping bounded in time; ``stop()`` (the session's ``close()``)
ends it. A closed breaker with no failures costs nothing more than aiobreaker's:
the guard reads the same two attributes on its hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiobreaker import CircuitBreaker, CircuitBreakerError, CircuitBreakerListener
from aiobreaker.state import CircuitBreakerState

from dbdaora.exceptions import BackendError, NodeUnavailableError
from dbdaora.settings import BreakerOptions

logger = logging.getLogger("dbdaora")

_CLOSED = CircuitBreakerState.CLOSED
_OPEN = CircuitBreakerState.OPEN

# The shortest bound on one ping: a busy host may take longer than a short interval.
MIN_PROBE_TIMEOUT = 1.0


def _state_name(state: Any) -> str:
    """``closed``, ``open`` or ``half-open``, from a state object or its enum member."""
    member = getattr(state, "state", state)
    return str(member.name).lower().replace("_", "-")


def _is_not_an_outage(exc: Exception) -> bool:
    return not isinstance(exc, (BackendError, TimeoutError))


def _raise(exc: BaseException) -> None:
    raise exc


def _nothing() -> None:
    return None


class _Watch(CircuitBreakerListener):  # type: ignore[misc] # aiobreaker ships no type hints
    """Logs each change of state, and starts the probe when the breaker opens."""

    def state_change(self, breaker: Breaker, old: Any, new: Any) -> None:
        logger.warning(
            "circuit breaker %s: %s -> %s", breaker.name, _state_name(old), _state_name(new)
        )
        if getattr(new, "state", new) is _OPEN:
            breaker.opened()
        elif getattr(new, "state", new) is _CLOSED and breaker.on_close is not None:
            breaker.on_close()


class Breaker(CircuitBreaker):  # type: ignore[misc] # aiobreaker ships no type hints
    """A circuit breaker in front of one store, probing it while open.

    Args:
        options: ``fail_max``, ``reset_timeout`` and ``probe_interval``.
        name: what the logs call it (``memory redis://...``).
        probe: one cheap round trip to the store (its ``ping``).
        on_close: called each time the breaker closes again.
    """

    def __init__(
        self,
        options: BreakerOptions,
        name: str,
        probe: Callable[[], Awaitable[None]],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            fail_max=options.fail_max,
            timeout_duration=datetime.timedelta(seconds=options.reset_timeout),
            exclude=[_is_not_an_outage],
            listeners=[_Watch()],
            name=name,
        )
        self.reset_timeout = options.reset_timeout
        self.probe_interval = options.probe_interval
        self.probe_timeout = max(options.probe_interval, MIN_PROBE_TIMEOUT)
        self.opened_at = 0.0  # wall clock, for messages
        self.probes = 0  # pings sent, for tests and stats
        self._probe = probe
        self.on_close = on_close
        self._prober: asyncio.Task[None] | None = None
        self._next_probe = 0.0  # time.monotonic() of the next ping

    def opened(self) -> None:
        """The breaker just opened: note when, and probe the store until it answers."""
        self.opened_at = time.time()
        self._next_probe = time.monotonic() + self.probe_interval
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # opened by hand outside a loop: reset_timeout alone closes it
            return
        prober = self._prober
        if prober is not None and not prober.done() and prober.get_loop() is loop:
            return
        self._prober = loop.create_task(self._probing(), name=f"probe {self.name}")

    async def _probing(self) -> None:
        interval = self.probe_interval
        while self.current_state is not _CLOSED:
            await asyncio.sleep(max(self._next_probe - time.monotonic(), 0.0))
            if self.current_state is _CLOSED:  # a live call closed it meanwhile
                return
            started = time.monotonic()
            self._next_probe = started + interval
            self.probes += 1
            try:
                async with asyncio.timeout(self.probe_timeout):
                    await self._probe()
            except Exception as exc:  # any failure means: still down
                logger.debug("circuit breaker %s: probe failed: %s", self.name, exc)
                self._next_probe = max(self._next_probe, time.monotonic())
                continue
            logger.warning("circuit breaker %s: the store answered a probe", self.name)
            self.close()
            return

    async def stop(self) -> None:
        """End the probe, if one runs in this loop (the session is closing)."""
        prober, self._prober = self._prober, None
        if prober is None or prober.done():
            return
        prober.cancel()
        if prober.get_loop() is asyncio.get_running_loop():
            try:
                await prober
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    async def guard(self, call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        """``call_async``, but for one cluster master's outage (``NodeUnavailableError``):
        that master's breaker counts it, so it passes this one as neither a failure nor
        a success (aiobreaker would count it as a success, and reset the failures)."""
        self.state.before_call(call)  # CircuitBreakerError while open
        if self.current_state is _OPEN:
            self.half_open()  # reset_timeout is over: this call tries
        try:
            result = await call(*args, **kwargs)
        except NodeUnavailableError:
            raise
        except Exception as exc:
            return self.call(_raise, exc)  # re-raises it, or CircuitBreakerError once open
        self.count_success()
        return result

    def count_success(self) -> None:
        """Count a call made outside the breaker that succeeded (a half-open one closes)."""
        with contextlib.suppress(CircuitBreakerError):  # opened meanwhile by another call
            self.call(_nothing)

    def count_failure(self, exc: Exception) -> None:
        """Count a call made outside the breaker that failed with ``exc``.

        Raises:
            Exception: ``exc``, or ``CircuitBreakerError`` where the breaker is open.
        """
        self.call(_raise, exc)

    def refusing(self) -> bool:
        """Whether the breaker is open and refuses a call now (its reset_timeout not over)."""
        if self.current_state is not _OPEN:
            return False
        opens_at: datetime.datetime | None = self.opens_at
        return opens_at is not None and datetime.datetime.utcnow() < opens_at

    def refusal(self) -> str:
        """Why a call is refused: ``circuit breaker open until 12:00:31 (next probe in 0.4 s)``."""
        until = datetime.datetime.fromtimestamp(self.opened_at + self.reset_timeout)
        text = f"circuit breaker open until {until:%H:%M:%S}"
        if self._prober is not None and not self._prober.done():
            wait = max(self._next_probe - time.monotonic(), 0.0)
            text += f" (next probe in {wait:.1f} s)"
        return text


def make_breaker(
    options: BreakerOptions | None, name: str, probe: Callable[[], Awaitable[None]]
) -> Breaker | None:
    return None if options is None else Breaker(options, name, probe)


def breaker_state(breaker: CircuitBreaker | None) -> str:
    return "none" if breaker is None else _state_name(breaker.current_state)
