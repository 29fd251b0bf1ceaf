# mypy: disallow-untyped-calls=False
# (google-cloud-datastore ships py.typed but leaves most of its API unannotated.)
"""The rules of one Datastore RPC: a deadline shared by a call's RPCs, and what a
failed commit says about whether it was applied."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core.exceptions import (
    Cancelled,
    DeadlineExceeded,
    InternalServerError,
    ServiceUnavailable,
    Unknown,
)
from google.api_core.retry import Retry

T = TypeVar("T")

# The client turns retry=None into its default retry, which keeps trying for 60 s;
# this one never retries, so every RPC ends by the call's deadline.
NO_RETRY = Retry(predicate=lambda exc: False)
# Answers that do not say whether a commit was applied (Google's guidance for
# Commit: DEADLINE_EXCEEDED and UNAVAILABLE may or may not have been applied).
UNSETTLED = (DeadlineExceeded, ServiceUnavailable, InternalServerError, Unknown, Cancelled)
# gRPC's words for a channel that never reached the server: nothing was sent.
NOT_CONNECTED = ("failed to connect", "connection refused")


class NotSentError(TimeoutError):
    """The call's deadline ran out before an RPC was sent."""


class UnansweredError(Exception):
    """A commit was sent and its answer does not say whether it was applied."""


def commit(rpc: Callable[[], T]) -> T:
    """Run one RPC that commits; an error that leaves its fate open becomes ``UnansweredError``."""
    try:
        return rpc()
    except NotSentError:
        raise
    except UNSETTLED as exc:
        if isinstance(exc, ServiceUnavailable) and any(
            words in str(exc).lower() for words in NOT_CONNECTED
        ):
            raise
        raise UnansweredError(str(exc)) from exc
    except (TimeoutError, OSError) as exc:
        raise UnansweredError(str(exc) or type(exc).__name__) from exc


class Deadline:
    """The time left to one store call, shared by its RPCs."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return max(self._end - time.monotonic(), 0.0)

    def rpc(self) -> dict[str, Any]:
        """Keyword arguments for the next RPC. Raises TimeoutError once time is up."""
        left = self.left()
        if left <= 0:
            raise NotSentError(f"no answer within {self.seconds:g} s")
        return {"retry": NO_RETRY, "timeout": left}
