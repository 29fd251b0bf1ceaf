"""SQL through SQLAlchemy 2: ``store`` (``SQLFallback``) and ``tables`` (the layout)."""
