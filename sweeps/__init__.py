"""Hyperparameter sweeps on Optuna: the search space, the study in the service's database, and the driver
that makes each trial an ordinary job. Imports ``models``, ``broker`` (a type), ``diagnosis`` and Optuna;
used by the API and the worker alike, so it imports neither (nor TensorFlow)."""
