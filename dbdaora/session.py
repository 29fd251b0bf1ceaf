"""``Session``: the stores a model is read and written through.

``Model.objects`` uses a default session built from the settings on first use;
``Model.objects.using(session)`` uses an explicit one.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from dbdaora import settings
from dbdaora.backends import FallbackStore, MemoryStore, open_fallback, open_memory
from dbdaora.meta import MODELS, UNSET, Unset

if TYPE_CHECKING:
    from dbdaora.meta import ModelMeta


class Session:
    """A Redis-side store and a fallback store, with the default TTL.

    Args:
        memory: URL or store of the Redis side; default from the settings.
        fallback: URL or store of the durable side; default from the settings.
        expire_time: seconds a Redis copy lives, for models whose Meta sets none.

    ``async with Session(...) as session:`` closes its connections at the end.
    Connections open lazily, on the first call that needs them.
    """

    def __init__(
        self,
        *,
        memory: str | MemoryStore | None = None,
        fallback: str | FallbackStore | None = None,
        expire_time: int | Unset | None = UNSET,
    ) -> None:
        config = settings.current()
        if expire_time is not UNSET:
            settings.Settings(expire_time=expire_time)
        self.memory: MemoryStore = (
            open_memory(memory or config.memory)
            if memory is None or isinstance(memory, str)
            else memory
        )
        self.fallback: FallbackStore = (
            open_fallback(fallback or config.fallback)
            if fallback is None or isinstance(fallback, str)
            else fallback
        )
        self.expire_time: int | None = (
            config.expire_time if isinstance(expire_time, Unset) else expire_time
        )

    def ttl(self, meta: ModelMeta) -> int | None:
        """The TTL of the model's Redis keys: its Meta's, else this session's."""
        return self.expire_time if isinstance(meta.expire_time, Unset) else meta.expire_time

    async def close(self) -> None:
        await self.memory.close()
        await self.fallback.close()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def create_all(self) -> None:
        """Have the fallback create what every declared model needs (SQL: its tables)."""
        await self.fallback.create_all(list(MODELS.values()))


_default: Session | None = None


def default_session() -> Session:
    """The session ``Model.objects`` uses, built from the settings on first use."""
    global _default
    if _default is None:
        _default = Session()
    return _default


def reset_default() -> None:
    global _default
    _default = None
