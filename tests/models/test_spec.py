import pytest
from pydantic import ValidationError

from models.spec import JobSpec, KerasJsonModel, LayersModel
from tests.specs import DIGITS_CNN, spec

DESIGN_EXAMPLE = {
    "name": "signature-cnn-rnn",
    "dataset": "ds_0123",
    "data": {"x": "x", "y": "y", "validation_split": 0.2, "test_split": 0.1,
             "shuffle": True, "scale_x": "standardize", "one_hot": True},
    "model": {
        "input_shape": [None, 7],
        "layers": [
            {"type": "Conv1D", "filters": 64, "kernel_size": 3, "activation": "relu"},
            {"type": "MaxPooling1D", "pool_size": 3},
            {"type": "LSTM", "units": 8},
            {"type": "Dense", "units": 2, "activation": "softmax"},
        ],
    },
    "compile": {"optimizer": {"type": "Nadam", "learning_rate": 0.0002},
                "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
    "fit": {"epochs": 100, "batch_size": 32,
            "callbacks": [{"type": "EarlyStopping", "monitor": "val_loss", "patience": 5,
                           "restore_best_weights": True}]},
    "seed": 42,
    "diagnosis": {"stop_on": ["diverging", "stuck_at_chance"]},
}


@pytest.mark.parametrize("body", [DESIGN_EXAMPLE, DIGITS_CNN])
def test_spec_round_trips_through_json(body):
    parsed = JobSpec.model_validate(body)
    assert JobSpec.model_validate(parsed.model_dump(mode="json")) == parsed
    assert isinstance(parsed.model, LayersModel)
    first = dict(body["model"]["layers"][0])
    assert parsed.model.layers[0].type == first.pop("type")
    assert parsed.model.layers[0].args == first


def test_keras_model_form_is_told_apart_from_layers():
    parsed = JobSpec.model_validate(spec(DIGITS_CNN, model={"keras": {"class_name": "Sequential", "config": {}}}))
    assert isinstance(parsed.model, KerasJsonModel)


def test_splits_must_leave_training_data():
    with pytest.raises(ValidationError, match="validation_split \\+ test_split"):
        JobSpec.model_validate(spec(DIGITS_CNN, data={"validation_split": 0.6, "test_split": 0.4}))


def test_strict_types_refuse_coercion():
    with pytest.raises(ValidationError):
        JobSpec.model_validate(spec(DIGITS_CNN, fit={"epochs": 3.0}))
    with pytest.raises(ValidationError):
        JobSpec.model_validate(spec(DIGITS_CNN, data={"shuffle": "yes"}))


def test_data_options_for_csv_columns_and_images_round_trip_and_are_checked():
    body = spec(DIGITS_CNN, data={"x": ["a", "b"], "y": "label", "image_size": [64, 32], "color_mode": "grayscale"})
    parsed = JobSpec.model_validate(body)
    assert parsed.data.x == ["a", "b"] and parsed.data.image_size == [64, 32]
    assert JobSpec.model_validate(parsed.model_dump(mode="json")) == parsed
    assert JobSpec.model_validate(DIGITS_CNN).data.image_size == [256, 256]  # Keras's default
    for bad in ({"image_size": [64]}, {"image_size": [0, 64]}, {"color_mode": "cmyk"}, {"x": []}, {"x": 3}):
        with pytest.raises(ValidationError):
            JobSpec.model_validate(spec(DIGITS_CNN, data=bad))
