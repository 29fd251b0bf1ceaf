"""A store's first failure in a session is logged once, naming the store (URL, password
masked) and the cause, so a mistyped or unreachable URL does not pass for a quiet outage
(issue 18)."""

from __future__ import annotations

import pytest

from dbdaora import BackendError, EntityNotFoundError, Session
from tests.support.models import Person
from tests.support.servers import free_port


def _failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [m for r in caplog.records if " store " in (m := r.getMessage()) and "failed:" in m]


async def test_an_unreachable_redis_is_logged_once_with_its_url_and_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing listens on the port: one WARNING names the masked URL and the refusal."""
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    async with Session(memory=url, fallback="memory://") as session:
        people = Person.objects.using(session)
        with caplog.at_level("WARNING", logger="dbdaora"):
            for _ in range(3):
                with pytest.raises(EntityNotFoundError):
                    await people.get("a")  # answered by the fallback, which has nothing
    (line,) = _failures(caplog)
    assert line.startswith(f"memory store {url.replace('secret', '***')} failed: ")
    assert "connection refused" in line and "the fallback answers" in line
    assert "secret" not in caplog.text


async def test_an_unreachable_fallback_is_logged_once_with_its_url_and_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A PostgreSQL URL where nothing listens: the first failed call logs it, once."""
    url = f"postgresql+asyncpg://app:secret@127.0.0.1:{free_port()}/app"
    async with Session(memory="memory://", fallback=url) as session:
        people = Person.objects.using(session)
        with caplog.at_level("WARNING", logger="dbdaora"):
            for _ in range(2):
                with pytest.raises(BackendError):
                    await people.get("a")
    (line,) = _failures(caplog)
    assert line.startswith(f"fallback store {url.replace('secret', '***')} failed: ")
    assert "connection refused" in line and line.endswith("; calls fail")
    assert "secret" not in caplog.text
