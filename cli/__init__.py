"""The ``trainyard`` command: serve, api, worker, migrate."""
