"""The durable side: the stores that keep the lasting copy of every record.

``protocol`` is the interface, ``dict`` the in-process store; ``sql`` and
``datastore`` each hold their store and, beside it, the layout that maps a
model to tables or entities. Only those two import their drivers.
"""
