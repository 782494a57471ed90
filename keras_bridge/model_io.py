"""The input and output shapes of saved models, in a validator child (the API imports no Keras).

The API checks that an ensemble's members fit together before it queues the build:
the shapes come from the saved ``.keras`` files themselves, loaded in safe mode.
"""

from pathlib import Path
from typing import Any

import keras


def _shape(tensors: list[Any]) -> list[int | None] | list[list[int | None]]:
    shapes = [list(t.shape) for t in tensors]
    return shapes[0] if len(shapes) == 1 else shapes


def model_io_json(request: dict[str, Any]) -> dict[str, Any]:
    """Args:
        request: ``{"kind": "model_io", "models": [<path of a .keras file>, ...]}``.

    Returns:
        ``{"models": [{"input_shape": [...], "output_shape": [...]}, ...]}`` in the order given
        (a model with several inputs or outputs: a list of shapes).
    """
    out = []
    for path in request["models"]:
        model = keras.saving.load_model(Path(path), safe_mode=True)
        out.append({"input_shape": _shape(model.inputs), "output_shape": _shape(model.outputs)})
        keras.backend.clear_session()
    return {"models": out}
