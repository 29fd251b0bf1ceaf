"""The ``dbdaora`` command line (the ``cli`` extra): check, warm, repair, inspect.

``app`` holds the typer application and turns every ``DBDaoraError`` into one
line and a non-zero exit; each command group has its module (``check``,
``warm``, ``repair``), over ``loading`` (model paths and settings) and ``raw``
(a plain redis-py view of the Redis side, for what no store operation reads:
versions, SCAN, TTLs and markers).
"""
