"""The training-phase rules, one module per finding code (diagnosis/registry.py binds them): each reads
the history so far and says whether its symptom is now clear. The monitor calls them after every
epoch and raises each code once, at the first epoch it holds as a warning.

Every rule that compares losses across epochs decides against the noise band of those losses
(diagnosis/noise.py): a move inside the band is not a finding. The reverse does not hold: staying
inside a wide band is no evidence of standing still, so "flat" (plateau, stuck) is a fitted fall
that has to be seen. Each result carries ``evidence["confidence"]``, the effect in noise bands;
results clear of the band (``noise.CLEAR``) are warnings, weaker ones info.
"""
