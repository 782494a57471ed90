"""Predictions of a finished job's saved model, in a validator child (the API imports no Keras).

The rows are scaled with the statistics the worker fitted on the job's training split
(``worker.data.save_scalers``), never re-derived; a regressor trained on a scaled y
(``data.scale_y``) answers in y's own units.
"""

from pathlib import Path
from typing import Any

import keras
import numpy as np

from worker.data import load_scalers

BATCH = 256


def predict_json(request: dict[str, Any]) -> dict[str, Any]:
    """Args:
        request: ``{"kind": "predict", "model": <path of the .keras file>, "scaler": <path of scaler.npz>,
        "x": <nested list, or {"npz": <path>, "key": <array name>}>}``.

    Returns:
        ``{"predictions": <nested list>}``, or ``{"shape_error": {"expected": [...], "received": [...]}}``.
    """
    source = request["x"]
    if isinstance(source, dict):  # an uploaded .npz the API saved
        with np.load(source["npz"], allow_pickle=False) as arrays:
            x = np.asarray(arrays[source["key"]])
    else:
        x = np.asarray(source)
    model = keras.saving.load_model(Path(request["model"]), safe_mode=True)
    expected = [None, *model.inputs[0].shape[1:]]
    received = list(x.shape)
    fits = len(expected) == len(received) and all(e is None or e == r for e, r in zip(expected, received, strict=True))
    if not fits:
        return {"shape_error": {"expected": expected, "received": received}}
    if x.dtype.kind not in "biuf":
        return {"shape_error": {"expected": expected, "received": received, "dtype": str(x.dtype)}}
    x_scaler, y_scaler = load_scalers(Path(request["scaler"]))
    x = x_scaler(x) if x_scaler is not None else x.astype(np.float32)
    predictions = model.predict(x, batch_size=BATCH, verbose=0)
    if y_scaler is not None:  # the model learnt a scaled y (data.scale_y): answer in the data's units
        predictions = y_scaler.inverse(predictions)
    return {"predictions": np.asarray(predictions, dtype=np.float64).tolist()}
