"""Bad input at call time: a clear error, raised before any I/O."""

from __future__ import annotations

from typing import Any

import pytest

from dbdaora import Session, ValidationError
from dbdaora.backends import DictFallback, InProcessRedis
from tests.support.models import Follow, Person, Ranking, Shop


@pytest.fixture
def down_session() -> Session:
    """A session whose Redis side fails every call: any I/O would raise BackendError."""
    store = InProcessRedis()
    store.down = True
    return Session(memory=store, fallback=DictFallback())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: p.get(""), r"Person.id: key part must be non-empty and without ':', got ''"),
        (
            lambda p: p.get("a:b"),
            r"Person.id: key part must be non-empty and without ':', got 'a:b'",
        ),
        (lambda p: p.get(None), r"Person.id: key part must be str, got None"),
        (lambda p: p.get(5), r"Person.id: key part must be str, got 5"),
        (lambda p: p.get(), r"Person: expected 1 key part\(s\) \['id'\], got 0"),
        (lambda p: p.get("a", "b"), r"Person: expected 1 key part\(s\) \['id'\], got 2"),
        (lambda p: p.get(idx="a"), r"Person: key parts go by position or by the key field names"),
        (lambda p: p.get("a", fields=["nope"]), r"Person: no field 'nope'"),
        (lambda p: p.get("a", fields="name"), r"Person: fields= takes a list of names"),
        (lambda p: p.get_many(["a", ""]), r"Person.id: key part must be non-empty"),
        (lambda p: p.delete("x:y"), r"Person.id: key part must be non-empty and without ':'"),
        (lambda p: p.exists(None), r"Person.id: key part must be str, got None"),
        (lambda p: p.get_many("abc"), r"Person: get_many takes a collection of ids, got 'abc'"),
        (lambda p: p.get_many(b"abc"), r"Person: get_many takes a collection of ids"),
        (
            lambda p: p.get("\ud800"),
            r"Person.id: key part must be str, got '\\ud800': a lone surrogate has no UTF-8",
        ),
        (lambda p: p.get_many(["a", "b\udc00"]), r"Person.id: .*a lone surrogate"),
        (
            lambda p: p.add(Follow(user="a", other="b", since=1)),
            r"Person: expected a Person instance",
        ),
    ],
)
async def test_person_bad_calls(down_session: Session, call: Any, message: str) -> None:
    """Each raises ValidationError naming model, field and value, with Redis unreachable."""
    with pytest.raises(ValidationError, match=message):
        await call(Person.objects.using(down_session))


async def test_add_with_an_empty_key_part(down_session: Session) -> None:
    """An entity whose key part is empty is refused before any write."""
    fallback = down_session.fallback
    with pytest.raises(ValidationError, match=r"Person.id: key part must be non-empty"):
        await Person.objects.using(down_session).add(Person(id="", name="A"))
    assert isinstance(fallback, DictFallback) and fallback.records == {}


async def test_add_rechecks_values_changed_behind_the_checks(down_session: Session) -> None:
    """A value slipped past the constructor (a list mutated in place) fails at add."""
    person = Person(id="a", name="A")
    person.__dict__["age"] = "x"
    with pytest.raises(ValidationError, match=r"Person.age: expected int, got 'x'"):
        await Person.objects.using(down_session).add(person)


async def test_composite_key_bad_parts(down_session: Session) -> None:
    """Composite keys name the part that is wrong."""
    follows = Follow.objects.using(down_session)
    with pytest.raises(ValidationError, match=r"Follow.other: key part must be non-empty"):
        await follows.get("ann", "")
    with pytest.raises(ValidationError, match=r"Follow: missing key parts \['other'\]"):
        await follows.get(user="ann")
    with pytest.raises(ValidationError, match=r"Follow: expected 2 key part\(s\)"):
        await follows.get_many(["ann"])


async def test_sorted_set_bad_members(down_session: Session) -> None:
    """A member of the wrong type is refused before any I/O."""
    with pytest.raises(ValidationError, match=r"Ranking.player: expected str, got 5"):
        await Ranking.objects.using(down_session).remove("b1", 5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda s: s.near("p", latitude=85.06, longitude=0, radius=1),
            r"Shop.latitude: must be a number within ±85.0511, got 85.06",
        ),
        (
            lambda s: s.near("p", latitude=0, longitude=-180.5, radius=1),
            r"Shop.longitude: must be a number within ±180, got -180.5",
        ),
        (
            lambda s: s.near("p", latitude=float("nan"), longitude=0, radius=1),
            r"Shop.latitude: must be a number within",
        ),
        (
            lambda s: s.near("p", latitude=0, longitude=0, radius=0),
            r"Shop: radius must be a number above 0, got 0",
        ),
        (
            lambda s: s.near("p", latitude=0, longitude=0, radius=-2.5),
            r"Shop: radius must be a number above 0, got -2.5",
        ),
        (
            lambda s: s.near("p", latitude=0, longitude=0, radius=1, unit="yd"),
            r"Shop: unit must be one of \['m', 'km', 'mi', 'ft'\], got 'yd'",
        ),
        (
            lambda s: s.near("p", latitude=0, longitude=0, radius=1, count=0),
            r"Shop: count must be an int of 1 or more, or None, got 0",
        ),
        (
            lambda s: s.add(Shop(city="p", name="a", latitude=86.0, longitude=0.0)),
            r"Shop.latitude: must be a number within ±85.0511, got 86.0",
        ),
        (
            lambda s: s.add(Shop(city="p", name="a", latitude=0.0, longitude=181.0)),
            r"Shop.longitude: must be a number within ±180, got 181.0",
        ),
        (lambda s: s.remove("p"), r"Shop: remove\(\) needs at least one member"),
    ],
)
async def test_geospatial_bad_input_fails_before_io(
    down_session: Session, call: Any, message: str
) -> None:
    """A coordinate out of Redis's range, a radius not above 0, an unknown unit or a count
    below 1: ValidationError naming the model, the field and the value, before any I/O."""
    with pytest.raises(ValidationError, match=message) as caught:
        await call(Shop.objects.using(down_session))
    assert caught.value.model == "Shop"
    assert caught.value.field is not None or "remove" in message
