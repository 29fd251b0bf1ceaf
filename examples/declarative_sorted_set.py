"""The seed README's sorted-set example (seed_sorted_set.py), declared as a SortedSetModel.

A declared sorted-set model is one member per instance; ``replace`` writes the
whole set, as PlaylistRepository.add does, into the same sorted set
``playlist:my_plalist``.
"""

import asyncio

from dbdaora import Key, Score, Session, SortedMember, SortedSetModel
from dbdaora.backends import DictFallback, InProcessRedis


class Playlist(SortedSetModel):
    id: str = Key()
    music: str = SortedMember()
    position: float = Score()

    class Meta:
        expire_time = 60


async def main() -> None:
    playlists = Playlist.objects.using(Session(memory=InProcessRedis(), fallback=DictFallback()))
    await playlists.replace("my_plalist", members=[("m1", 1), ("m2", 2), ("m3", 3)])
    print([entry.music for entry in await playlists.get("my_plalist")])


asyncio.run(main())
