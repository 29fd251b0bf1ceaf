"""Google Cloud Datastore: ``store`` (``DatastoreFallback``) and ``layout`` (the entities)."""
