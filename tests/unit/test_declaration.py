"""Model declarations: what they build, and the errors bad ones raise at class creation."""

from __future__ import annotations

import pytest

from dbdaora import (
    ConfigurationError,
    Field,
    GeoMember,
    GeoModel,
    Key,
    Latitude,
    LayoutError,
    Longitude,
    Model,
    Score,
    SortedMember,
    UnknownFieldError,
    ValidationError,
)
from dbdaora.meta import StoreKind
from tests.support.models import Follow, Person, Ranking


def test_instances_are_value_objects() -> None:
    """Keyword constructor, equality and a readable repr."""
    person = Person(id="john_doe", name="John Doe", age=33)
    assert person == Person(id="john_doe", name="John Doe", age=33)
    assert person != Person(id="john_doe", name="John Doe", age=34)
    assert repr(person) == "Person(id='john_doe', name='John Doe', age=33)"
    assert Person(id="x", name="X").age == 0


def test_metadata_is_built_once() -> None:
    """_meta holds the key name, kind and fields in declaration order."""
    meta = Person._meta
    assert meta.key_name == "person" and meta.kind is StoreKind.HASH
    assert [f.name for f in meta.fields] == ["id", "name", "age"]
    assert [f.name for f in Follow._meta.key_fields] == ["user", "other"]
    assert Ranking._meta.kind is StoreKind.SORTED_SET
    assert Person.objects is Person.objects


def test_key_name_defaults_to_snake_case_and_can_be_set() -> None:
    """The class name in snake_case, unless Meta.key_name says otherwise."""

    class UserAccountV2(Model):
        id: str = Key()

    class Renamed(Model):
        id: str = Key()

        class Meta:
            key_name = "legacy"

    assert UserAccountV2._meta.key_name == "user_account_v2"
    assert Renamed._meta.key_name == "legacy"


def test_objects_refuses_instances() -> None:
    """objects is reached through the class only."""
    with pytest.raises(AttributeError, match=r"through the class \(Person.objects\)"):
        Person(id="a", name="A").objects  # noqa: B018


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: str = Field()", r"Broken: a model needs at least one Key\(\) field"),
        (
            "id: str = Key()\n    a: str = SortedMember()\n    b: float = Score()\n"
            "    c: float = Score()",
            r"Broken: at most one SortedMember\(\) and one Score\(\)",
        ),
        (
            "id: str = Key()\n    a: str = SortedMember()",
            r"Broken: SortedMember\(\) and Score\(\) go together",
        ),
        (
            "id: str = Key()\n    b: float = Score()",
            r"Broken: SortedMember\(\) and Score\(\) go together",
        ),
        (
            "id: str = Key()\n    class Meta:\n        ttl = 3",
            r"Broken.Meta: unknown option\(s\) \['ttl'\]",
        ),
        ("id: str = Key()\n    objects: str = Field()", r"Broken: field name 'objects' collides"),
        ("id: str = Key()\n    _secret: str = Field()", r"Broken: field name '_secret' collides"),
        ("id: str = Key()\n    using: str = Field()", r"Broken: field name 'using' collides"),
        ("id: set[int] = Key()", r"Broken.id: dbdaora cannot store values of type set\[int\]"),
        (
            "id: str = Key()\n    x: object = Field()",
            r"Broken.x: dbdaora cannot store values of type object",
        ),
        ("id: float = Key()", r"Broken.id: Key\(\) must be str or int, got float"),
        ("id: str | None = Key()", r"Broken.id: a Key\(\) cannot be None; annotate it str"),
        (
            "id: str = Key()\n    a: str | None = SortedMember()\n    b: float = Score()",
            r"Broken.a: a SortedMember\(\) cannot be None",
        ),
        (
            "id: str = Key()\n    a: str = SortedMember()\n    b: float | None = Score()",
            r"Broken.b: a Score\(\) cannot be None",
        ),
        (
            "id: str = Key()\n    count: int = Field(default='zero')",
            r"Broken.count: default 'zero' is not a int",
        ),
        ("id: str = Key()\n    n: int = 'x'", r"Broken.n: default 'x' is not a int"),
        ("id: str = Key()\n    n: int = None", r"Broken.n: default None is not a int"),
        ("id = Key()", r"Broken.id: a field needs an annotation, as in `id: str = Key\(\)`"),
        (
            "id: str = Key()\n    name = Field()",
            r"Broken.name: a field needs an annotation, as in `name: str = Field\(\)`",
        ),
        (
            "id: str = Key()\n    class Meta:\n        max_size = 3",
            r"Broken.Meta.max_size is for sorted-set models",
        ),
        (
            "id: str = Key()\n    class Meta:\n        expire_time = 0",
            r"Broken.Meta.expire_time must be a positive int",
        ),
        (
            "id: str = Key()\n    class Meta:\n        key_name = 'a:b'",
            r"Broken.Meta.key_name must be a non-empty str",
        ),
        (
            "id: str = Key()\n    a: str = SortedMember()\n    b: float = Score()\n"
            "    c: int = Field()",
            r"Broken: a sorted-set model holds Key\(\), SortedMember\(\) and Score\(\) only",
        ),
        (
            "id: str = Key()\n    m: str = GeoMember()\n    lat: float = Latitude()",
            r"Broken: GeoMember\(\), Latitude\(\) and Longitude\(\) go together, "
            r"got only \['m', 'lat'\]",
        ),
        (
            "id: str = Key()\n    lat: float = Latitude()\n    lon: float = Longitude()",
            r"Broken: GeoMember\(\), Latitude\(\) and Longitude\(\) go together",
        ),
        (
            "id: str = Key()\n    m: int = GeoMember()\n    lat: float = Latitude()\n"
            "    lon: float = Longitude()",
            r"Broken.m: GeoMember\(\) must be str, got int",
        ),
        (
            "id: str = Key()\n    m: str = GeoMember()\n    lat: str = Latitude()\n"
            "    lon: float = Longitude()",
            r"Broken.lat: Latitude\(\) must be float, got str",
        ),
        (
            "id: str = Key()\n    m: str = GeoMember()\n    lat: float = Latitude()\n"
            "    lon: float = Longitude()\n    note: str = Field()",
            r"Broken: a geospatial model holds Key\(\), GeoMember\(\), Latitude\(\) and "
            r"Longitude\(\) only; remove \['note'\]",
        ),
    ],
)
def test_bad_declarations_fail_at_class_creation(body: str, message: str) -> None:
    """Each bad declaration raises ConfigurationError naming the model."""
    source = f"class Broken(Model):\n    {body}\n"
    scope = {
        "Model": Model,
        "Key": Key,
        "Field": Field,
        "SortedMember": SortedMember,
        "Score": Score,
        "GeoMember": GeoMember,
        "Latitude": Latitude,
        "Longitude": Longitude,
    }
    with pytest.raises(ConfigurationError, match=message) as error:
        exec(source, scope)
    assert error.value.model == "Broken"


def test_models_do_not_subclass_models() -> None:
    """Subclassing a concrete model is refused, naming the subclass."""
    with pytest.raises(ConfigurationError, match="Employee: a model cannot subclass another model"):

        class Employee(Person):
            salary: int = Field()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"id": "a", "name": 5}, r"Person.name: expected str, got 5"),
        ({"id": "a", "name": "A", "age": "33"}, r"Person.age: expected int, got '33'"),
        ({"id": "a", "name": "A", "age": True}, r"Person.age: expected int, got True"),
        ({"id": None, "name": "A"}, r"Person.id: expected str, got None"),
    ],
)
def test_constructor_checks_types(kwargs: dict[str, object], message: str) -> None:
    """A value that does not fit its field raises ValidationError naming model, field, value."""
    with pytest.raises(ValidationError, match=message) as error:
        Person(**kwargs)  # type: ignore[arg-type]
    assert error.value.model == "Person"
    assert error.value.field == message.split(".")[1].split(":")[0]


def test_assignment_checks_types() -> None:
    """Setting an attribute is checked as the constructor is."""
    person = Person(id="a", name="A")
    with pytest.raises(ValidationError, match=r"Person.age: expected int, got 'old'"):
        person.age = "old"  # type: ignore[assignment]


def test_float_fields_take_ints() -> None:
    """An int given to a float field is stored as a float."""
    ranking = Ranking(board="b", player="p", points=3)
    assert ranking.points == 3.0 and isinstance(ranking.points, float)


def test_plain_annotations_are_fields() -> None:
    """An annotation without a descriptor is a Field (with its value as default)."""

    class Plain(Model):
        id: str = Key()
        count: int = 5

    assert Plain(id="a").count == 5
    assert [f.name for f in Plain._meta.fields] == ["id", "count"]


def test_an_undeclared_attribute_cannot_be_set() -> None:
    """Setting a name that is no field raises UnknownFieldError (an AttributeError too)."""
    person = Person(id="a", name="A")
    with pytest.raises(UnknownFieldError, match=r"Person has no field 'nmae'; its fields: id"):
        person.nmae = "B"  # type: ignore[attr-defined]  # the misspelling under test
    assert isinstance(UnknownFieldError("x", model="Person"), AttributeError)
    person.name = "B"
    assert person == Person(id="a", name="B")
    with pytest.raises(ValidationError, match=r"Person.age: expected int, got 'old'"):
        person.age = "old"  # type: ignore[assignment]  # the wrong type under test
    assert "nmae" not in vars(person)


@pytest.mark.parametrize("value", ["\ud800", "a\udcff", "\udfff\u00e9"])
def test_a_lone_surrogate_is_a_validation_error_naming_the_field(value: str) -> None:
    """A str with no UTF-8 form is refused at construction, with the reason."""
    with pytest.raises(ValidationError, match=r"Person.name: .*a lone surrogate") as caught:
        Person(id="a", name=value)
    assert caught.value.field == "name" and caught.value.value == value
    with pytest.raises(ValidationError, match=r"Person.id: .*a lone surrogate"):
        Person(id=value, name="A")
    assert Person(id="é", name="日本").name == "日本"  # any str that encodes is fine


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ("m: str = GeoMember()\n    lat: float = Latitude()", "m, lat"),
        ("lat: float = Latitude()\n    lon: float = Longitude()", "lat, lon"),
        ("m: str = GeoMember()", "m"),
    ],
)
def test_a_geo_model_missing_one_of_its_fields_is_a_validation_error(
    body: str, fields: str
) -> None:
    """Issue 19's bad input: a geospatial model missing one of its three fields is a
    ValidationError (a LayoutError, also a ConfigurationError) naming the model and fields."""
    scope = {"Model": Model, "Key": Key, "GeoMember": GeoMember, "Latitude": Latitude}
    scope["Longitude"] = Longitude
    with pytest.raises(ValidationError, match="go together") as error:
        exec(f"class Broken(Model):\n    id: str = Key()\n    {body}\n", scope)
    assert isinstance(error.value, LayoutError) and isinstance(error.value, ConfigurationError)
    assert (error.value.model, error.value.field) == ("Broken", fields)


def test_a_geo_model_declares_its_three_fields() -> None:
    """A GeoModel without GeoMember(), Latitude() and Longitude() is refused; one with them
    is a geospatial model whose manager is a GeoManager."""
    with pytest.raises(ConfigurationError, match="Stop: a GeoModel declares a GeoMember"):

        class Stop(GeoModel):
            id: str = Key()
            note: str = Field()

    class Station(GeoModel):
        line: str = Key()
        name: str = GeoMember()
        latitude: float = Latitude()
        longitude: float = Longitude()

    assert Station._meta.kind is StoreKind.GEOSPATIAL
    assert type(Station.objects).__name__ == "GeoManager"
