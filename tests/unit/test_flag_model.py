"""Flag models: their declaration checks, and bad input refused before any I/O."""

from __future__ import annotations

from typing import Any

import pytest

from dbdaora import (
    ConfigurationError,
    Field,
    Flag,
    FlagModel,
    Key,
    LayoutError,
    Model,
    Session,
    ValidationError,
)
from dbdaora.backends import DictFallback, InProcessRedis
from dbdaora.managers import FlagManager
from dbdaora.meta import StoreKind
from tests.support.models import Liked, Seen


@pytest.fixture
def down_session() -> Session:
    """A session whose Redis side fails every call: any I/O would raise BackendError."""
    store = InProcessRedis()
    store.down = True
    return Session(memory=store, fallback=DictFallback())


def test_a_flag_model_is_its_keys_and_one_flag() -> None:
    """Key() fields and a Flag() make a flag model, with a FlagManager; the flag takes the
    default declared, and a Model with the same fields is one too."""
    assert Seen._meta.kind is StoreKind.FLAG
    assert isinstance(Seen.objects, FlagManager)
    assert Seen(user="a", item=1) == Seen(user="a", item=1, seen=True)

    class Plain(Model):
        id: str = Key()
        on: bool = Flag(default=False)

    assert Plain._meta.kind is StoreKind.FLAG and Plain(id="x").on is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "id: str = Key()\n    seen: bool = Flag()\n    note: str = Field()",
            r"Broken: a flag model holds Key\(\) and Flag\(\) only; remove \['note'\]",
        ),
        (
            "id: str = Key()\n    seen: bool = Flag()\n    other: bool = Flag()",
            r"Broken: at most one Flag\(\), got \['seen', 'other'\]",
        ),
        ("id: str = Key()\n    seen: int = Flag()", r"Broken.seen: Flag\(\) must be bool, got int"),
        (
            "id: str = Key()\n    seen: bool | None = Flag()",
            r"Broken.seen: a Flag\(\) cannot be None",
        ),
        ("id: str = Key()\n    seen: bool = Flag(default=1)", r"default 1 is not a bool"),
        ("seen: bool = Flag()", r"Broken: a model needs at least one Key\(\) field"),
        ("id: str = Key()\n    name: str = Field()", r"Broken: a FlagModel declares a Flag\(\)"),
    ],
)
def test_bad_flag_declarations_fail_at_class_creation(body: str, message: str) -> None:
    """Each bad declaration raises ConfigurationError naming the model, before any I/O."""
    scope = {"FlagModel": FlagModel, "Key": Key, "Field": Field, "Flag": Flag}
    with pytest.raises(ConfigurationError, match=message) as error:
        exec(f"class Broken(FlagModel):\n    {body}\n", scope)
    assert error.value.model == "Broken"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ("id: str = Key()\n    seen: bool = Flag()\n    note: str = Field()", "note"),
        ("id: str = Key()\n    name: str = Field()", "name"),
    ],
)
def test_a_flag_model_with_another_field_is_a_validation_error(body: str, fields: str) -> None:
    """Issue 19's bad input: a Flag() model with any other non-key field is a
    ValidationError (a LayoutError, also a ConfigurationError) naming the model and field."""
    scope = {"FlagModel": FlagModel, "Key": Key, "Field": Field, "Flag": Flag}
    with pytest.raises(ValidationError) as error:
        exec(f"class Broken(FlagModel):\n    {body}\n", scope)
    assert isinstance(error.value, LayoutError) and isinstance(error.value, ConfigurationError)
    assert (error.value.model, error.value.field) == ("Broken", fields)


@pytest.mark.parametrize(
    ("call", "message", "field", "value"),
    [
        (lambda s: s.exists("a"), r"Seen: expected 2 key part\(s\)", None, ("a",)),
        (lambda s: s.get(user="a"), r"Seen: missing key parts \['item'\]", "item", None),
        (lambda s: s.exists("a", "1"), r"Seen.item: key part must be int, got '1'", "item", "1"),
        (lambda s: s.delete("a:b", 1), r"Seen.user: key part must be non-empty", "user", "a:b"),
        (lambda s: s.exists_many([("a",)]), r"Seen: expected 2 key part\(s\)", None, ("a",)),
        (lambda s: s.get_many("ab"), r"Seen: takes a collection of ids", None, "ab"),
        (
            lambda s: s.add(Seen(user="a", item=1, seen=False)),
            r"Seen.seen: a flag model stores set flags only; add it with True",
            "seen",
            False,
        ),
        (lambda s: s.add(Liked(id="a")), r"Seen: expected a Seen instance", None, Liked(id="a")),
    ],
)
async def test_bad_calls(
    down_session: Session, call: Any, message: str, field: Any, value: Any
) -> None:
    """Each raises ValidationError naming the model, the field and the value, with Redis down."""
    with pytest.raises(ValidationError, match=message) as error:
        await call(Seen.objects.using(down_session))
    assert (error.value.model, error.value.field, error.value.value) == ("Seen", field, value)
    assert down_session.stats()["models"].get("Seen", {}).get("errors", 0) == 0


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_flag_that_is_not_a_bool_is_refused(value: Any) -> None:
    """The constructor and attribute writes take a bool only."""
    with pytest.raises(ValidationError, match=r"Seen.seen: expected bool") as error:
        Seen(user="a", item=1, seen=value)
    assert (error.value.field, error.value.value) == ("seen", value)
    entity = Seen(user="a", item=1)
    with pytest.raises(ValidationError, match=r"Seen.seen: expected bool"):
        entity.seen = value


async def test_redis_down_answers_from_the_fallback_and_records_repairs(
    down_session: Session,
) -> None:
    """With Redis unavailable, reads answer from the fallback and writes succeed, their
    keys recorded for repair."""
    seen = Seen.objects.using(down_session)
    await seen.add(Seen(user="a", item=1))
    assert await seen.exists("a", 1) and not await seen.exists("a", 2)
    assert await seen.exists_many([("a", 1), ("a", 2)]) == [True, False]
    await seen.delete("a", 1)
    assert not await seen.exists("a", 1)
    repairs = {key for key, _ in await down_session.fallback.repairs(10)}
    assert {b"seen:a:1", b"seen:not-found:a:1"} <= repairs
    assert down_session.stats()["models"]["Seen"]["errors"] > 0


async def test_the_cache_answers_and_follows_writes() -> None:
    """With a session cache, a second read asks neither store; writes update the cache."""
    async with Session(
        memory=InProcessRedis(), fallback=DictFallback(), cache={"ttl": 60, "max_size": 10}
    ) as session:
        liked = Liked.objects.using(session)
        await liked.add(Liked(id="a"))
        assert await liked.exists("a") and not await liked.exists("b")
        assert await liked.exists_many(["a", "b"]) == [True, False]
        assert await liked.get("a") == Liked(id="a")
        assert session.stats()["models"]["Liked"]["cache_hits"] == 4
        await liked.delete("a")
        await liked.add(Liked(id="b"))
        assert await liked.exists_many(["a", "b"]) == [False, True]
