"""The validator children's one entry point: a request's ``kind`` picks the work.

``check`` (the default: requests without a kind) checks a spec (``validate.py``);
``predict`` answers a finished job's predictions (``predict.py``); ``model_io`` reads saved
models' input and output shapes (``model_io.py``). One pool, one set
of limits (memory, time, per-tenant turns) for all Keras work out of the API process.
"""

from typing import Any

from keras_bridge.model_io import model_io_json
from keras_bridge.predict import predict_json
from keras_bridge.validate import check_spec_json, reset_after_check

KINDS = {"check": check_spec_json, "predict": predict_json, "model_io": model_io_json}


def handle(request: dict[str, Any]) -> dict[str, Any]:
    return KINDS[request.get("kind", "check")](request)


def reset() -> None:
    reset_after_check()
