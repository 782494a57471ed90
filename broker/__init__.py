"""The embedded broker: Celery over the SQLite file, no server to install."""
