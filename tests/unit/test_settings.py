"""Configuration: configure(), the DBDAORA_SETTINGS module, and the embedded default."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from dbdaora import ConfigurationError, Session, configure, settings
from dbdaora.backends import DictFallback, InProcessRedis
from dbdaora.backends.redis.single import RedisStore
from tests.support.models import Person
from tests.support.servers import RedisServer


def test_nothing_configured_is_embedded() -> None:
    """Both sides default to memory://, with a one-hour TTL."""
    session = Session()
    assert isinstance(session.memory, InProcessRedis)
    assert isinstance(session.fallback, DictFallback)
    assert session.expire_time == 3600


async def test_objects_uses_the_default_session() -> None:
    """Model.objects works with no session given."""
    await Person.objects.add(Person(id="a", name="A"))
    assert (await Person.objects.get("a")).name == "A"


def test_configure_sets_what_sessions_use(redis_proc: RedisServer) -> None:
    """configure() changes the stores and TTL of sessions made afterwards."""
    configure(memory=redis_proc.url, expire_time=30)
    session = Session()
    assert isinstance(session.memory, RedisStore)
    assert session.expire_time == 30


@pytest.fixture
def settings_module() -> Iterator[types.ModuleType]:
    module = types.ModuleType("my_service_settings")
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def test_settings_module(
    settings_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upper-case names of the DBDAORA_SETTINGS module are read; configure() wins over them."""
    settings_module.MEMORY = "redis://127.0.0.1:1/0"
    settings_module.EXPIRE_TIME = 120
    monkeypatch.setenv("DBDAORA_SETTINGS", settings_module.__name__)
    settings.reset()
    assert settings.current().memory == "redis://127.0.0.1:1/0"
    assert settings.current().expire_time == 120
    configure(expire_time=5)
    assert settings.current().expire_time == 5
    assert settings.current().memory == "redis://127.0.0.1:1/0"


def test_missing_settings_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DBDAORA_SETTINGS that cannot be imported names the module."""
    monkeypatch.setenv("DBDAORA_SETTINGS", "no_such_settings_module")
    settings.reset()
    with pytest.raises(ConfigurationError, match="DBDAORA_SETTINGS='no_such_settings_module'"):
        settings.current()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"memroy": "memory://"}, r"unknown setting\(s\) \['memroy'\]"),
        ({"expire_time": -1}, r"expire_time must be a positive int or None, got -1"),
        ({"expire_time": "60"}, r"expire_time must be a positive int or None, got '60'"),
        ({"memory": "localhost"}, r"memory must be a URL, got 'localhost'"),
        (
            {"memory": "mongodb://u:secret@x"},
            r"no memory \(Redis-side\) backend for 'mongodb://u:\*\*\*@x'; known schemes",
        ),
        ({"fallback": "mysql://x/db"}, r"no fallback backend for 'mysql://x/db'"),
        (
            {"memory": "redis://:secret@127.0.0.1:6379/abc"},
            r"'redis://:\*\*\*@127.0.0.1:6379/abc': the database \(the path\) must be a number",
        ),
    ],
)
def test_bad_settings(options: dict[str, object], message: str) -> None:
    """configure() refuses unknown names and bad values, and keeps the old settings."""
    with pytest.raises(ConfigurationError, match=message):
        configure(**options)
    assert settings.current() == settings.Settings()


def test_unknown_scheme_and_missing_password_leak() -> None:
    """An unknown scheme names it, with the password masked."""
    with pytest.raises(ConfigurationError, match=r"no fallback backend for 'mongo://u:\*\*\*@h:1'"):
        Session(fallback="mongo://u:secret@h:1")
    with pytest.raises(
        ConfigurationError, match=r"no memory \(Redis-side\) backend for 'http://h'"
    ):
        Session(memory="http://h")
