"""Every declared model, for ``Session.create_all()`` and tools that walk them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbdaora.meta.info import ModelMeta

# By key_name. A model declared again under the same key_name (a module
# reloaded, a test) replaces the earlier one.
MODELS: dict[str, ModelMeta] = {}


def register(meta: ModelMeta) -> None:
    MODELS[meta.key_name] = meta
