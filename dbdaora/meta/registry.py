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


def key_prefixes() -> list[bytes]:
    """The Redis key prefixes of every declared model, its keys' and its markers',
    none under another (so a SCAN per prefix finds each key once)."""
    prefixes = sorted(
        {meta.redis_key("") for meta in MODELS.values()}
        | {meta.marker_key("") for meta in MODELS.values()}
    )
    kept: list[bytes] = []
    for prefix in prefixes:
        if not kept or not prefix.startswith(kept[-1]):
            kept.append(prefix)
    return kept
