"""Where datasets and trained models live: the artifact store, uploads (checked, stored as
memory-mappable arrays, described) and the built-in sets.

Shared by the API (describing and checking uploads) and the worker (reading
them for training). NumPy and Pillow only: no web framework, no TensorFlow.
"""
