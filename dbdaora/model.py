"""``Model``: declare a class once, read and write it through ``Model.objects``."""

from __future__ import annotations

import typing
from typing import Any, ClassVar

from dbdaora.exceptions import ConfigurationError
from dbdaora.fields import Field, Key, Score, SortedMember
from dbdaora.manager import Manager
from dbdaora.meta import ModelMeta, StoreKind, build_meta


@typing.dataclass_transform(
    kw_only_default=True, field_specifiers=(Key, Field, SortedMember, Score)
)
class ModelType(type):
    """Builds each model's ``_meta`` once, at class creation; nothing more."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> ModelType:
        options = namespace.pop("Meta", None)
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        model_bases = [base for base in bases if isinstance(base, ModelType)]
        if model_bases:
            if any("_meta" in vars(base) for base in model_bases):
                raise ConfigurationError(
                    f"{name}: a model cannot subclass another model; declare its fields itself",
                    model=name,
                )
            cls._meta = build_meta(cls, namespace, options)  # type: ignore[attr-defined] # set here, declared on Model
        return cls


class Objects:
    """The ``objects`` attribute: the model's manager, reached through the class only."""

    def __init__(self) -> None:
        self._managers: dict[type, Manager[Any]] = {}

    def __get__(self, instance: object, owner: type) -> Any:
        if instance is not None:
            raise AttributeError(
                f"objects is reached through the class ({owner.__name__}.objects), not an instance"
            )
        manager = self._managers.get(owner)
        if manager is None:
            meta: ModelMeta | None = vars(owner).get("_meta")
            if meta is None:
                raise AttributeError(f"{owner.__name__} declares no model; subclass it")
            manager = _manager_class(meta)(meta)
            self._managers[owner] = manager
        return manager


def _manager_class(meta: ModelMeta) -> type[Manager[Any]]:
    if meta.kind is StoreKind.SORTED_SET:
        from dbdaora.sorted_sets import SortedSetManager

        return SortedSetManager
    from dbdaora.hashes import HashManager

    return HashManager


class Model(metaclass=ModelType):
    """Base of declared models.

    Subclasses annotate their attributes with ``Key()``, ``Field()``,
    ``SortedMember()`` and ``Score()`` and may carry a ``class Meta`` with
    ``key_name``, ``expire_time`` and (sorted sets) ``max_size``.
    """

    _meta: ClassVar[ModelMeta]
    objects: ClassVar[Any] = Objects()
