"""The calibration benchmark: ``python -m bench.calibration`` (see run.py)."""
