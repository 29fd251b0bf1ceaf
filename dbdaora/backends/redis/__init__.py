"""The Redis side: the stores that keep hot copies with a TTL.

``protocol`` is the interface, ``inprocess`` the reference store without a
server, ``single`` and ``cluster`` the stores on real servers, ``scripts`` every
Lua script they run, ``wire`` how commands reach a server. Only ``single``,
``cluster`` and ``wire`` import redis-py.
"""
