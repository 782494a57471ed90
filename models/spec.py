"""The job spec v1: the contract between a client, the API and the worker.

Structure and types are checked here with pydantic (unknown fields are errors,
so a stale ``n_epoch`` is never silently ignored). Names and arguments of
Keras objects (layers, optimizers, losses, ...) are free-form here and checked
against Keras itself by ``keras_bridge``, which this module must not import.
"""

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_serializer,
    model_validator,
)

from models.findings import TRAINING_CODES

# The training-phase finding codes (models/findings.py CODES), the values diagnosis.stop_on accepts.
TrainingCode = Literal[TRAINING_CODES]  # type: ignore[valid-type]
Scaling = Literal["standardize", "minmax", "rescale"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class KerasObject(BaseModel):
    """``{"type": "<Keras class name>", ...constructor arguments}``."""

    model_config = ConfigDict(extra="allow", strict=True)

    type: str = Field(min_length=1, max_length=100)

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


KerasRef = str | KerasObject


ArrayName = Annotated[str, Field(min_length=1, max_length=255)]
# One array (or CSV column) by name, or several 1-D ones (CSV columns) stacked as features.
ArrayNames = ArrayName | Annotated[list[ArrayName], Field(min_length=1, max_length=10_000)]
ColorMode = Literal["grayscale", "rgb", "rgba"]
CHANNELS: dict[str, int] = {"grayscale": 1, "rgb": 3, "rgba": 4}  # per ColorMode


def split_sizes(samples: int, validation_split: float, test_split: float) -> tuple[int, int, int]:
    """(train, validation, test) sample counts: the validation and test parts rounded to the nearest
    sample, training gets the rest. The one rule: the worker splits so, the API's limits and the
    preflight split checks count so (the training count may be below 1: the worker refuses that job)."""
    n_validation, n_test = round(samples * validation_split), round(samples * test_split)
    return samples - n_validation - n_test, n_validation, n_test


class DataSpec(StrictModel):
    x: ArrayNames = "x"
    y: ArrayNames = "y"
    # Image-folder datasets only (as Keras's image_dataset_from_directory): every image is
    # decoded to color_mode and resized (bilinear) to image_size = [height, width].
    image_size: list[Annotated[int, Field(gt=0, le=4096)]] = Field(default_factory=lambda: [256, 256],
                                                                     min_length=2, max_length=2)
    color_mode: ColorMode = "rgb"
    validation_split: float = Field(default=0.2, ge=0.0, lt=1.0)
    test_split: float = Field(default=0.0, ge=0.0, lt=1.0)
    shuffle: bool = True
    scale_x: Scaling | None = None
    scale_y: Scaling | None = None
    one_hot: bool = False
    # K-fold cross-validation (datastore/splits.py): K fold jobs, each holding out one K-th of the
    # samples outside the test part as its validation data; stratified for a classifier's class labels.
    folds: int | None = Field(default=None, ge=2, le=20, description=(
        "K-fold cross-validation: K fold jobs under one run (stratified for a classifier's class labels, with "
        "the job's seed); the test part stays out of every fold; each fold validates on its held-out part, "
        "so validation_split must be left out (or 0)"))

    @property
    def channels(self) -> int:
        """Channels of a decoded image (``color_mode``)."""
        return CHANNELS[self.color_mode]

    def split_sizes(self, samples: int) -> tuple[int, int, int]:
        return split_sizes(samples, self.validation_split, self.test_split)

    @model_validator(mode="after")
    def _folds_replace_validation_split(self) -> "DataSpec":
        # With folds, each fold's held-out part is its validation data (as in scikit-learn's cross_validate,
        # which has no validation_split): a validation_split set beside folds would be silently ignored, so it
        # is refused; left out, it is stored as 0.
        if self.folds is None:
            return self
        if "validation_split" in self.model_fields_set and self.validation_split != 0:
            raise ValueError(
                "validation_split cannot be used with folds: each fold's held-out part is its validation data; "
                f"leave validation_split out (or 0). Received: validation_split={self.validation_split}, "
                f"folds={self.folds}")
        self.validation_split = 0.0
        return self

    @model_validator(mode="after")
    def _splits_leave_training_data(self) -> "DataSpec":
        if self.validation_split + self.test_split >= 1.0:
            raise ValueError(
                "validation_split + test_split must be below 1. Received: "
                f"validation_split={self.validation_split}, test_split={self.test_split}"
            )
        return self


class LayersModel(StrictModel):
    input_shape: list[Annotated[int, Field(gt=0)] | None] = Field(min_length=1, max_length=8)
    layers: list[KerasObject] = Field(min_length=1, max_length=500)


class KerasJsonModel(StrictModel):
    """Any functional graph, as the dict of ``model.to_json()``; loaded in safe mode."""

    keras: dict[str, Any]


def _model_kind(value: Any) -> str:
    if isinstance(value, dict) and "keras" in value:
        return "keras"
    if isinstance(value, KerasJsonModel):
        return "keras"
    return "layers"


ModelSpec = Annotated[
    Annotated[LayersModel, Tag("layers")] | Annotated[KerasJsonModel, Tag("keras")],
    Discriminator(_model_kind),
]


class CompileSpec(StrictModel):
    optimizer: KerasRef = "adam"
    loss: KerasRef
    metrics: list[KerasRef] = Field(default_factory=list, max_length=20)


def _one_choice(expected: str) -> WrapValidator:
    """A number-or-"auto" field fails with one message naming both forms, not one per union member."""
    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            raise ValueError(f"expected {expected}. Received: {value!r}") from exc
    return WrapValidator(validate)


class SpeedSpec(StrictModel):
    """How the worker compiles and feeds the model; each choice is the service's ("auto") unless set.

    ``steps_per_execution``: training steps run per call into TensorFlow (Keras's compile
    argument); "auto" picks it from the batches per epoch (``worker/speed.py``). ``jit_compile``:
    XLA; "auto" is Keras's own choice (on a GPU when every layer supports it, never on a CPU).
    ``mixed_precision``: float16 compute with float32 weights, on a GPU only (ignored on a CPU).
    """

    steps_per_execution: Annotated[Annotated[int, Field(ge=1, le=10_000)] | Literal["auto"],
                                   _one_choice('an integer from 1 to 10000 or "auto"')] = "auto"
    jit_compile: Annotated[bool | Literal["auto"], _one_choice('true, false or "auto"')] = "auto"
    mixed_precision: bool = False


class FitSpec(StrictModel):
    epochs: int = Field(default=10, ge=1, le=100_000)
    batch_size: int = Field(default=32, ge=1, le=1_000_000)
    callbacks: list[KerasObject] = Field(default_factory=list, max_length=20)
    speed: SpeedSpec = Field(default_factory=SpeedSpec)


class DiagnosisSpec(StrictModel):
    # Training-phase findings that end the job early with stop_reason "diagnosis".
    stop_on: list[TrainingCode] = Field(default_factory=lambda: ["diverging"])
    # When the job does not learn, retry it with the top suggestion, up to this many times.
    auto_retry: int = Field(default=0, ge=0, le=5)


WebhookEvent = Literal[
    "job.queued", "job.started", "job.epoch", "job.finding", "job.succeeded", "job.failed", "job.cancelled",
]
# job.epoch is opt-in: one POST per epoch is more than most receivers want.
DEFAULT_WEBHOOK_EVENTS: list[WebhookEvent] = [
    "job.queued", "job.started", "job.finding", "job.succeeded", "job.failed", "job.cancelled",
]


def _long_enough(secret: SecretStr) -> SecretStr:
    if len(secret.get_secret_value()) < 16:
        raise ValueError("the secret must be at least 16 characters (e.g. the output of `openssl rand -hex 32`)")
    return secret


class WebhookSpec(StrictModel):
    """Where to POST the job's events. The URL's host is checked by the API
    (see ``models.webhook_url``); the secret signs each body and is never returned."""

    url: str = Field(min_length=1, max_length=2048)
    # SecretStr: never shown by repr() or str(), so it cannot slip into a log line.
    secret: Annotated[SecretStr, Field(max_length=256), AfterValidator(_long_enough)]
    events: list[WebhookEvent] = Field(default_factory=lambda: list(DEFAULT_WEBHOOK_EVENTS), min_length=1)

    @field_serializer("secret", when_used="always")
    def _stored_as_is(self, secret: SecretStr) -> str:
        # The stored spec keeps it (the delivery worker signs with it); the API redacts it.
        return secret.get_secret_value()


class ResourcesSpec(StrictModel):
    """What one job needs of a worker; the queue it is sent to follows from it (``broker.tasks.job_queue``).

    ``gpus`` 0 trains on a CPU worker's slot, 1 on one GPU slot, N > 1 with ``tf.distribute.MirroredStrategy``
    over N GPUs of one worker (``fit.batch_size`` is then the global batch, split across the N devices).
    ``gpu_memory_mb`` (per device) sends the job only to slots that offer at least that much.
    """

    gpus: int = Field(default=0, ge=0, le=8)
    gpu_memory_mb: int | None = Field(default=None, gt=0, le=1024 * 1024)

    @model_validator(mode="after")
    def _memory_needs_a_gpu(self) -> "ResourcesSpec":
        if self.gpu_memory_mb is not None and self.gpus == 0:
            raise ValueError(f"gpu_memory_mb needs gpus >= 1. Received: gpus=0, gpu_memory_mb={self.gpu_memory_mb}")
        return self


class JobSpec(StrictModel):
    name: str | None = Field(default=None, max_length=200)
    dataset: str = Field(min_length=1, max_length=64)
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec
    compile: CompileSpec
    fit: FitSpec = Field(default_factory=FitSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    diagnosis: DiagnosisSpec = Field(default_factory=DiagnosisSpec)
    webhook: WebhookSpec | None = None
    force: bool = False
