"""The ``trainyard`` command: serve, api, worker, migrate; submit, follow, jobs, curves (the client)."""
