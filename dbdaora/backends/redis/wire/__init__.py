"""How commands reach a Redis server, and nothing about what they mean to dbdaora.

``link`` says what a store asks of its connection side; ``node``, ``cluster`` and
``sentinel`` are the links for one server, a Redis Cluster and the master a
Sentinel deployment names, each turning driver errors into ``BackendError``.
Below them, ``transport`` defines a transport (and ``Direct``, one pooled
connection per call), ``multiplex`` keeps one connection per single-node store
and matches replies in order, ``commands`` encodes the few commands it sends,
and ``pipelining`` batches operations on a redis-py client (the cluster's) per
event-loop iteration.
"""
