"""The session: the two stores, and what keeps reads up when one fails.

``session`` wires a Session together from the settings; ``guard`` bounds and
breaks every store call and keeps the keys to repair; ``deadlines`` times Redis
calls with one timer; ``flights`` shares fallback reads; ``cache`` is the
in-process cache; ``stats`` counts.
"""

from dbdaora.session.session import Session, default_session, reset_default
from dbdaora.session.stats import ModelStats

__all__ = ["ModelStats", "Session", "default_session", "reset_default"]
