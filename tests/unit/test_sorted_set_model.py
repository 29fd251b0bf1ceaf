"""SortedSetModel: the base that types a sorted-set model's ``objects``, and its checks."""

from __future__ import annotations

import pytest

from dbdaora import (
    ConfigurationError,
    Field,
    Key,
    Score,
    Session,
    SortedMember,
    SortedSetModel,
)
from dbdaora.managers import SortedSetManager
from dbdaora.meta import StoreKind
from tests.support.models import Ranking


class Chart(SortedSetModel):
    chart: str = Key()
    song: str = SortedMember()
    plays: float = Score()

    class Meta:
        max_size = 2


def test_a_sorted_set_model_is_built_as_with_model() -> None:
    """Its metadata and manager are those a Model subclass with the same fields gets."""
    assert Chart._meta.kind is StoreKind.SORTED_SET is Ranking._meta.kind
    assert Chart._meta.max_size == 2 and Chart._meta.key_name == "chart"
    assert type(Chart.objects) is SortedSetManager is type(Ranking.objects)
    assert repr(Chart(chart="c", song="s", plays=1)) == "Chart(chart='c', song='s', plays=1.0)"


async def test_a_sorted_set_model_reads_and_writes() -> None:
    """Members added through its manager read back by rank, max_size applied."""
    async with Session(memory="memory://", fallback="memory://") as session:
        charts = Chart.objects.using(session)
        await charts.add(
            Chart(chart="c", song="a", plays=3),
            Chart(chart="c", song="b", plays=1),
            Chart(chart="c", song="d", plays=2),
        )
        assert [m.song for m in await charts.range("c", reverse=True)] == ["a", "d"]


@pytest.mark.parametrize(
    "body",
    [
        "id: str = Key()\n    name: str = Field()",
        "id: str = Key()",
    ],
)
def test_hash_fields_in_a_sorted_set_model_are_refused(body: str) -> None:
    """A SortedSetModel without a SortedMember() and a Score() fails at class creation."""
    scope = {"SortedSetModel": SortedSetModel, "Key": Key, "Field": Field}
    with pytest.raises(
        ConfigurationError,
        match=r"Broken: a SortedSetModel declares a SortedMember\(\) and a Score",
    ) as error:
        exec(f"class Broken(SortedSetModel):\n    {body}\n", scope)
    assert error.value.model == "Broken"


def test_the_base_itself_declares_no_model() -> None:
    """SortedSetModel has no metadata and no manager; subclassing a model built on it fails."""
    assert "_meta" not in vars(SortedSetModel)
    with pytest.raises(AttributeError, match="SortedSetModel declares no model; subclass it"):
        SortedSetModel.objects  # noqa: B018
    with pytest.raises(ConfigurationError, match="Remix: a model cannot subclass another model"):

        class Remix(Chart):
            extra: int = Field()
