"""Why a model does not learn: checks before training, rules during it, a verdict after.

Plain Python and NumPy: the rules read numbers (a spec, data statistics, curves,
probe measurements) and return ``models.findings.Finding`` objects. The Keras
callback that gathers those numbers while training lives in ``worker/monitor.py``.
"""
