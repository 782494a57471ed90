"""The HTTP edge: FastAPI app, routers, request/response schemas.

Routes validate and call service functions in ``api/services``; training is
enqueued by task name, never by importing the worker.
"""
