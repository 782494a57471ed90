"""Where datasets and trained models live: the artifact store and the built-in sets.

Shared by the API (describing and checking uploads) and the worker (reading
them for training). NumPy only: no web framework, no TensorFlow.
"""
