"""The data model (database tables, the job spec, enums, settings); not Keras models (keras_bridge/, worker/).

Imports neither FastAPI, Celery nor TensorFlow, so both the API and the worker
can depend on it without pulling in each other's stack.
"""
