"""How a model maps to a SQL table, and how an existing table is checked against it.

One table per model, named by its ``key_name``: a column per field (key fields
form the primary key; optional fields are nullable). A sorted-set model has one
row per member (key parts, member, score) and an index on (key parts, score).

Each column has a pair of converters, chosen once per column from the field's
codec category and the dialect, between model values and what the driver takes
and gives back.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import CompileError

from dbdaora.exceptions import ConfigurationError, ValidationError
from dbdaora.fields.codecs import Category, Codec
from dbdaora.meta import FieldInfo, ModelMeta, StoreKind

Convert = Callable[[Any], Any]

# Dialects with an upsert (INSERT ... ON CONFLICT DO UPDATE) that SQLAlchemy builds.
INSERTS: dict[str, Callable[[sa.Table], postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}

_INT64 = 2**63


class UnfitError(ValueError):
    """A value of the right Python type that the column cannot hold exactly."""


def _same(value: Any) -> Any:
    return value


def _int64(value: int) -> int:
    if not -_INT64 <= value < _INT64:
        raise UnfitError("the SQL column holds 64-bit integers")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise UnfitError("PostgreSQL text cannot hold NUL characters")
    return value


def _not_nan(value: float) -> float:
    if value != value:
        raise UnfitError("SQLite stores NaN as NULL")
    return value


def _instant(value: datetime.datetime) -> datetime.datetime:
    if value.utcoffset() is None:
        raise UnfitError("the SQL fallback stores instants: give the datetime a timezone")
    return value.astimezone(datetime.UTC)


def _utc_wall_clock(value: datetime.datetime) -> datetime.datetime:
    # SQLite's DATETIME text has no offset: keep the UTC wall clock, mark it UTC on read.
    return _instant(value).replace(tzinfo=None)


def _as_utc(value: datetime.datetime) -> datetime.datetime:
    return value.replace(tzinfo=datetime.UTC)


def column_type(category: Category, dialect: str) -> sa.types.TypeEngine[Any]:
    """The SQL type of a field's column."""
    if category is Category.DECIMAL and dialect != "postgresql":
        # Only PostgreSQL's NUMERIC without a scale is exact; SQLite's is a float.
        return sa.Text()
    types: dict[Category, sa.types.TypeEngine[Any]] = {
        Category.STR: sa.Text(),
        Category.INT: sa.BigInteger(),
        Category.FLOAT: sa.Double(),
        Category.BOOL: sa.Boolean(),
        Category.BYTES: sa.LargeBinary(),
        Category.DATETIME: sa.DateTime(timezone=True),
        Category.DATE: sa.Date(),
        Category.DECIMAL: sa.Numeric(),
        # The engine's JSON serializer passes text through: the column holds the codec's JSON.
        Category.JSON: sa.JSON(none_as_null=True),
    }
    return types[category]


def _converters(codec: Codec, dialect: str) -> tuple[Convert, Convert]:
    """(to_db, from_db) for one column."""
    category = codec.category
    if category is Category.INT:
        return _int64, _same
    if category is Category.STR and dialect == "postgresql":
        return _no_nul, _same
    if category is Category.FLOAT and dialect == "sqlite":
        return _not_nan, _same
    if category is Category.DATETIME:
        if dialect == "sqlite":
            return _utc_wall_clock, _as_utc
        return _instant, _same
    if category is Category.JSON or (category is Category.DECIMAL and dialect != "postgresql"):
        encode, decode = codec.encode, codec.decode
        return encode, lambda text: decode(text.encode())
    return _same, _same


def _type_text(type_: Any, dialect: Dialect) -> str:
    try:
        return str(dialect.type_compiler_instance.process(type_))
    except CompileError:
        return repr(type_)


class TableMap:
    """One model's table, its upsert, and the conversions between instances and rows."""

    def __init__(self, meta: ModelMeta, metadata: sa.MetaData, dialect: Dialect) -> None:
        self.meta = meta
        self.dialect = dialect
        _check_length(meta, dialect)
        primary = [field.name for field in meta.key_fields]
        if meta.member is not None:
            primary.append(meta.member.name)
        columns = [
            sa.Column(
                field.name,
                column_type(field.codec.category, dialect.name),
                primary_key=field.name in primary,
                autoincrement=False,
                nullable=field.codec.optional and field.name not in primary,
            )
            for field in meta.fields
        ]
        self.table = _existing_or_new(metadata, meta, columns, dialect)
        self.converters = [
            (field, *_converters(field.codec, dialect.name)) for field in meta.fields
        ]
        self.key_columns = [self.table.c[field.name] for field in meta.key_fields]
        self._keys = [meta.fields.index(field) for field in meta.key_fields]
        self._key_texts = [self._text_pair(field) for field in meta.key_fields]
        if meta.member is not None and meta.score is not None:
            self.member = self.table.c[meta.member.name]
            self.score = self.table.c[meta.score.name]
            if not self.table.indexes:
                sa.Index(f"{meta.key_name}_score_idx", *self.key_columns, self.score)
            tie: Any = self.member
            if meta.member.codec.category is not Category.STR:
                tie = sa.cast(tie, sa.Text())
            # Ties go by member bytes, as in Redis: PostgreSQL's "C" collation compares bytes.
            self.tie = tie.collate("C") if dialect.name == "postgresql" else tie
            self.member_value, self.member_text = self._text_pair(meta.member)
        insert = INSERTS[dialect.name](self.table)
        updates = {c.name: insert.excluded[c.name] for c in self.table.c if not c.primary_key}
        self.upsert = (
            insert.on_conflict_do_update(index_elements=list(self.table.primary_key), set_=updates)
            if updates
            else insert.on_conflict_do_nothing()
        )

    # -- values ------------------------------------------------------------------

    def _to_db(self, field: FieldInfo, to_db: Convert, value: Any) -> Any:
        try:
            return to_db(value)
        except UnfitError as exc:
            raise ValidationError(
                f"{self.meta.name}.{field.name}: {exc}, got {value!r}",
                model=self.meta.name,
                field=field.name,
                value=value,
            ) from None

    def _text_pair(self, field: FieldInfo) -> tuple[Callable[[str], Any], Callable[[Any], str]]:
        """Between the text of a key part or member (as Redis holds it) and its column value."""
        _, to_db, _ = self.converters[self.meta.fields.index(field)]
        # Key parts and members are str or int, checked at declaration.
        text = field.codec.category is Category.STR
        parse: Callable[[str], Any] = _same if text else int
        if text and to_db is _same:
            return _same, _same

        def from_text(part: str) -> Any:
            return self._to_db(field, to_db, parse(part))

        return from_text, _same if text else str

    def key_values(self, name: str) -> tuple[Any, ...]:
        """The key column values of a record name (key parts joined with ``:``)."""
        return tuple(
            from_text(part)
            for (from_text, _), part in zip(self._key_texts, name.split(":"), strict=True)
        )

    def key_clause(self, name: str) -> sa.ColumnElement[bool]:
        values = self.key_values(name)
        return sa.and_(
            *(column == value for column, value in zip(self.key_columns, values, strict=True))
        )

    def keys_in(self, keys: Sequence[tuple[Any, ...]]) -> sa.ColumnElement[bool]:
        if len(self.key_columns) == 1:
            return self.key_columns[0].in_([key[0] for key in keys])
        return sa.tuple_(*self.key_columns).in_(keys)

    def names_after(self, after: str | None, limit: int) -> sa.Select[Any]:
        """Up to ``limit`` distinct keys after the record ``after``, in key column order:
        keyset pagination (a sorted set's rows share their key: DISTINCT)."""
        query = sa.select(*self.key_columns).distinct()
        if after is not None:
            query = query.where(sa.tuple_(*self.key_columns) > sa.tuple_(*self.key_values(after)))
        return query.order_by(*self.key_columns).limit(limit)

    def names(self, rows: Iterable[Sequence[Any]]) -> list[str]:
        """The record names of rows selected by ``names_after``."""
        texts = [to_text for _, to_text in self._key_texts]
        return [
            ":".join(text(value) for text, value in zip(texts, row, strict=True)) for row in rows
        ]

    def row(self, entity: Any) -> dict[str, Any]:
        """The column values of an instance; ValidationError for a value no column holds."""
        values = entity.__dict__
        row = {}
        for field, to_db, _ in self.converters:
            value = values[field.name]
            row[field.name] = None if value is None else self._to_db(field, to_db, value)
        return row

    def entity(self, row: Sequence[Any]) -> Any:
        return self.meta.build(
            {
                field.name: None if value is None else from_db(value)
                for (field, _, from_db), value in zip(self.converters, row, strict=True)
            }
        )

    def name_of(self, row: Sequence[Any]) -> str:
        """The record name of a row selected with the whole table."""
        return ":".join(
            to_text(row[i]) for i, (_, to_text) in zip(self._keys, self._key_texts, strict=True)
        )

    # -- checks ------------------------------------------------------------------

    def problems(
        self, columns: Sequence[Mapping[str, Any]], primary_key: Sequence[str]
    ) -> list[str]:
        """How an existing table (as reflected) differs from the model, one line each."""
        dialect = self.dialect
        found = {column["name"]: column for column in columns}
        problems = []
        for column in self.table.c:
            expected = _type_text(column.type, dialect)
            actual = found.get(column.name)
            if actual is None:
                wanted = f"{column.name} {expected}{_null_text(bool(column.nullable))}"
                advice = f"ALTER TABLE {self.table.name} ADD COLUMN {wanted}"
                problems.append(f"missing column {wanted} ({advice})")
                continue
            actual_type = _type_text(actual["type"], dialect)
            # A key column is NOT NULL by being in the primary key, however declared.
            needs = _null_text(bool(column.nullable) or column.primary_key)
            has = _null_text(actual["nullable"] or column.primary_key)
            if (actual_type, has) != (expected, needs):
                problems.append(
                    f"column {column.name} is {actual_type}{has}, the model needs {expected}{needs}"
                )
        for name, reflected in found.items():
            if (
                name not in self.table.c
                and not reflected["nullable"]
                and reflected.get("default") is None
            ):
                problems.append(
                    f"column {name} is not in the model and is NOT NULL without a default"
                )
        key = [column.name for column in self.table.primary_key]
        if list(primary_key) != key:
            problems.append(
                f"primary key is ({', '.join(primary_key)}), the model needs ({', '.join(key)})"
            )
        return problems


def _null_text(nullable: bool) -> str:
    return "" if nullable else " NOT NULL"


def _check_length(meta: ModelMeta, dialect: Dialect) -> None:
    longest = meta.key_name + ("_score_idx" if meta.kind is StoreKind.SORTED_SET else "")
    limit = dialect.max_identifier_length
    if len(longest) > limit:
        raise ConfigurationError(
            f"{meta.name}: key_name {meta.key_name!r} is too long for {dialect.name} "
            f"(names up to {limit} characters; {longest!r} is needed)",
            model=meta.name,
        )


def _existing_or_new(
    metadata: sa.MetaData, meta: ModelMeta, columns: Sequence[sa.Column[Any]], dialect: Dialect
) -> sa.Table:
    """The store's table of this name: reused when another model declared the same columns."""
    table = metadata.tables.get(meta.key_name)
    if table is None:
        return sa.Table(meta.key_name, metadata, *columns)
    same = [(c.name, _type_text(c.type, dialect), c.nullable, c.primary_key) for c in table.c] == [
        (c.name, _type_text(c.type, dialect), c.nullable, c.primary_key) for c in columns
    ]
    if not same:
        raise ConfigurationError(
            f"{meta.name}: another model in this store already uses table {meta.key_name!r} "
            "with other columns; give one of them its own Meta.key_name",
            model=meta.name,
        )
    return table


REPAIRS = "dbdaora_repairs"
"""The table of repair records: Redis keys a write could not update, with their stamps."""


def repair_table(metadata: sa.MetaData) -> sa.Table:
    """``dbdaora_repairs (key BLOB PRIMARY KEY, stamp BIGINT)``: read by primary key only."""
    return sa.Table(
        REPAIRS,
        metadata,
        sa.Column("key", sa.LargeBinary(), primary_key=True, autoincrement=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
    )
