"""The training side: the Celery app, the training task, Keras callbacks.

Importing ``worker.celery_app`` does not import TensorFlow; each worker
process imports it once, when the process starts (see ``worker.celery_app``).
"""
