"""GeoSpatialRepository and make_geospatial_service (0.27's API), as 0.27's own tests
use them, over memory://, a real redis-server, the cluster and Sentinel."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest

from dbdaora import (
    DictFallbackDataSource,
    EntityNotFoundError,
    GeoMember,
    GeoPoint,
    GeoSpatialEntity,
    GeoSpatialRepository,
    ValidationError,
    make_geospatial_service,
)
from dbdaora.backends import geo
from tests.support.raw import RawView

Source = tuple[Any, RawView]


@dataclasses.dataclass
class FakeEntity:
    fake_id: str
    fake2_id: str
    data: Any


class FakeGeoSpatialRepository(GeoSpatialRepository[FakeEntity, str]):
    name = "fake"
    key_attrs = ("fake2_id", "fake_id")
    entity_cls = FakeEntity


class Stop(GeoSpatialEntity):
    id: str


class StopRepository(GeoSpatialRepository[Stop, str]): ...


COORD = GeoPoint(6.000002324581146, 4.999999830436074)


def _added(member: bytes) -> FakeEntity:
    return FakeEntity(
        fake_id="fake",
        fake2_id="fake2",
        data=GeoMember(member=member, dist=0.0003, hash=None, coord=COORD),
    )


def _repository(legacy_memory: Source, cls: type[Any] = FakeGeoSpatialRepository) -> Any:
    return cls(
        memory_data_source=legacy_memory[0],
        fallback_data_source=DictFallbackDataSource(),
        expire_time=60,
    )


async def test_add_then_radius_query_as_027_tests_do(legacy_memory: Source) -> None:
    """Two members added one entity each; the radius query answers both as GeoMembers with
    distance and coordinates (0.27's fake_entity), under 0.27's key ``fake:fake2:fake``."""
    repository = _repository(legacy_memory)
    await repository.add(_added(b"m1"))
    await repository.add(_added(b"m2"))
    entity = await repository.query(
        fake_id="fake", fake2_id="fake2", latitude=5, longitude=6, max_distance=1
    ).entity
    assert entity == FakeEntity(
        fake_id="fake",
        fake2_id="fake2",
        data=[
            GeoMember(member=b"m1", dist=0.0003, hash=None, coord=COORD),
            GeoMember(member=b"m2", dist=0.0003, hash=None, coord=COORD),
        ],
    )
    _, raw = legacy_memory
    assert dict(raw.zrange(b"fake:fake2:fake")) == {
        b"m1": geo.score(6.000002324581146, 4.999999830436074),
        b"m2": geo.score(6.000002324581146, 4.999999830436074),
    }
    await repository.close()


async def test_query_options_and_not_found(legacy_memory: Source) -> None:
    """with_dist/with_coord, count and units as 0.27 passed them to GEORADIUS; nothing
    within the radius, or no set, is EntityNotFoundError."""
    repository = _repository(legacy_memory, StopRepository)
    await repository.add(
        Stop(id="line", data=[GeoMember(b"a", None, None, GeoPoint(2.35, 48.85))]),
        Stop(id="line", data=GeoMember("b", None, None, GeoPoint(2.30, 48.86))),
    )
    entity = await repository.query(
        "line",
        latitude=48.85,
        longitude=2.35,
        max_distance=5000,
        distance_unit="m",
        with_dist=False,
        with_coord=False,
        count=1,
    ).entity
    assert entity == Stop(id="line", data=[GeoMember(b"a", None, None, None)])
    with pytest.raises(EntityNotFoundError):
        await repository.query("line", latitude=0, longitude=0, max_distance=1).entity
    with pytest.raises(EntityNotFoundError):
        await repository.query("nope", latitude=0, longitude=0, max_distance=1).entity
    with pytest.raises(ValidationError, match="radius query with latitude, longitude"):
        repository.query("line", latitude=1)
    with pytest.raises(ValidationError, match="data must be a GeoMember with coord"):
        await repository.add(Stop(id="line", data=GeoMember(b"c", None, None, None)))
    await repository.close()


async def test_make_geospatial_service_takes_027s_arguments(legacy_memory: Source) -> None:
    """The service factory takes 0.27's arguments; get_one runs the radius query."""
    memory, _ = legacy_memory

    async def memory_factory() -> Any:
        return memory

    async def fallback_factory() -> Any:
        return DictFallbackDataSource()

    service = await make_geospatial_service(
        FakeGeoSpatialRepository,
        memory_factory,
        fallback_factory,
        repository_expire_time=1,
        cb_failure_threshold=0,
        cb_recovery_timeout=10,
        cb_expected_exception=OSError,
        cb_expected_fallback_exception=OSError,
        logger=logging.getLogger("geo"),
        has_add_circuit_breaker=False,
        has_delete_circuit_breaker=False,
    )
    await service.add(_added(b"m1"))
    entity = await service.get_one(
        fake_id="fake", fake2_id="fake2", latitude=5, longitude=6, max_distance=1
    )
    assert [member.member for member in entity.data] == [b"m1"]
    await service.shutdown()
