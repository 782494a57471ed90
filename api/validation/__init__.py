"""Untrusted work in sacrificial processes: the API's validator pool.

The process that answers HTTP imports no TensorFlow. Whatever interprets a
tenant's spec with Keras runs in a child process (``child.py``) under a memory
limit and a time limit; a crash, an abort, an out-of-memory or a timeout there
costs that one request a 4xx and the pool a new child (``pool.py``), never the
API. ``spec_checks.py`` is the pool the API checks specs with.
"""
