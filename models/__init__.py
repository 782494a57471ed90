"""The system's data model: tables, the job spec, enums, settings.

Imports neither FastAPI, Celery nor TensorFlow, so both the API and the worker
can depend on it without pulling in each other's stack.
"""
