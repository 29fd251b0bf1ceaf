"""How commands reach a Redis server, and nothing about what they mean.

``multiplex`` keeps one connection per single-node store and matches replies in
order; ``commands`` encodes the few commands it sends; ``pipelining`` batches
operations on a redis-py client (the cluster's) per event-loop iteration.
"""
