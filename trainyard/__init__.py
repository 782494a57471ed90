"""The Trainyard service from Python: ``Client(url, key).fit(model, x, y, ...)`` as Keras's ``fit``."""

from cli.client import ClientError
from trainyard.client import Client
from trainyard.ensemble import Ensemble
from trainyard.job import Job
from trainyard.translate import Unsupported

__all__ = ["Client", "ClientError", "Ensemble", "Job", "Unsupported"]
