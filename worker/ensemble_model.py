"""The ensemble as one Keras model: raw x in, the members' averaged predictions out.

Each member keeps what made its own predictions: its input scaling (the statistics
its job fitted on its training part, ``worker.data.save_scalers``) as a Normalization
layer, softmax or sigmoid after a logits output, and for a regressor trained on a
scaled y the inverse scaling back to y's units. ``keras.layers.Average`` joins them.
Only built-in layers: the saved file loads in safe mode (no Lambda, no custom code).
"""

from dataclasses import dataclass
from typing import Literal

import keras
import numpy as np

from worker.data import Scaler


@dataclass
class Member:
    job_id: str
    model: keras.Model
    x_scaler: Scaler | None
    y_scaler: Scaler | None  # a regressor trained on a scaled y (data.scale_y)
    activation: Literal["softmax", "sigmoid"] | None  # a classifier that outputs logits


def _normalization(scaler: Scaler, features: int, name: str, *, invert: bool = False) -> keras.layers.Normalization:
    """``(x - shift) / scale`` per feature (the last axis), as ``Scaler`` computes it; ``invert``: back."""
    shift = np.broadcast_to(np.asarray(scaler.shift, dtype=np.float32).reshape(-1), (features,))
    scale = np.broadcast_to(np.asarray(scaler.scale, dtype=np.float32).reshape(-1), (features,))
    return keras.layers.Normalization(axis=-1, mean=shift.copy(), variance=np.square(scale), invert=invert, name=name)


def assemble(members: list[Member]) -> tuple[keras.Model, keras.Model]:
    """(the ensemble model, the same graph with every member's branch as an output before the average)."""
    sample_shape = tuple(members[0].model.inputs[0].shape[1:])
    x = keras.Input(shape=sample_shape, name="x")
    branches = []
    for index, member in enumerate(members):
        member.model.name = f"member_{index}"  # unique names in the saved graph; the members' own collide
        inputs = x
        if member.x_scaler is not None:
            inputs = _normalization(member.x_scaler, int(sample_shape[-1]), f"member_{index}_scale_x")(x)
        out = member.model(inputs)
        if member.activation is not None:
            out = keras.layers.Activation(member.activation, name=f"member_{index}_probabilities")(out)
        if member.y_scaler is not None:
            out = _normalization(member.y_scaler, int(out.shape[-1]), f"member_{index}_unscale_y", invert=True)(out)
        branches.append(out)
    average = keras.layers.Average(name="average")(branches)
    return keras.Model(x, average, name="ensemble"), keras.Model(x, [*branches, average], name="ensemble_branches")
