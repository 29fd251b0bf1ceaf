"""The Redis side: the stores that keep hot copies with a TTL.

``protocol`` is the interface, ``inprocess`` the reference store without a
server, ``single`` and ``cluster`` the stores on real servers. What they send is
theirs and ``operations``' (each operation's command) and ``scripts``' (every Lua
script); how it reaches a server is ``wire``'s. Only ``wire`` imports redis-py.
"""
