"""The service's training, as a plain Keras script: the baseline of bench/overhead.py.

Reads the same job spec (JSON) and the same .npz file the service trains on and
redoes, with numpy and Keras only (no project module is imported), what the
worker does:

  data    x -> float32; shuffle with np.random.default_rng(seed).permutation(n);
          split [train | validation | test] with n_test = round(n * test_split),
          n_val = round(n * validation_split); "rescale" divides every part by
          max |x| of the training part.
  model   keras.utils.set_random_seed(seed); construct every layer, then
          keras.Input(shape) and apply the layers in order (the same order in
          which the worker draws the initializers' seeds); compile.
  fit     model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs,
          batch_size, shuffle, verbose=0) with one timing callback, then
          evaluate on the test part and save the model, as the worker does.

With ``--shuffle tfdata`` the training batches come instead from
``tf.data.Dataset.range(n_train).shuffle(n_train, seed=seed,
reshuffle_each_iteration=True).batch(batch_size)`` (the arrays gathered in
memory): the batch order of a worker that feeds ``fit`` from such a
``tf.data`` pipeline rather than from arrays with ``shuffle=True``.

Only the spec features the benchmark uses are supported: a "layers" model,
string or {"type": ...} optimizer / loss / metrics, scale_x "rescale" /
"standardize" / "minmax", one_hot, no scale_y, no fit callbacks.

Keras's defaults unless told: ``--steps-per-execution K`` and ``--jit-compile
auto|true|false`` are passed to ``model.compile``, ``--forward-batch-size B`` to
``fit`` (``validation_batch_size``) and ``evaluate`` (a plain script with the
service's own speed settings).

Usage: python bench/plain_fit.py SPEC.json DATA.npz OUT.json [--shuffle keras|tfdata]
           [--steps-per-execution K] [--jit-compile auto|true|false] [--forward-batch-size B]
Writes the per-epoch logs (columnar, like GET /v1/jobs/{id}/curves), each
epoch's duration_s (on_epoch_begin -> on_epoch_end, as the service's
RecordEpochs callback measures it), the time of each epoch's end, and phase
timings.
"""

import json
import os
import tempfile
import time

T_PROCESS = time.perf_counter()

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

T_IMPORTED = time.perf_counter()


def keras_object(module, ref):
    """"adam" or {"type": "Adam", "learning_rate": 0.003} -> what compile() takes."""
    if isinstance(ref, str):
        return ref
    args = {k: v for k, v in ref.items() if k != "type"}
    return getattr(module, ref["type"])(**args)


def scaler(train, method):
    axes = tuple(range(train.ndim - 1)) if train.ndim > 1 else (0,)
    if method == "standardize":
        shift, scale = train.mean(axis=axes), train.std(axis=axes)
    elif method == "minmax":
        shift, scale = train.min(axis=axes), train.max(axis=axes) - train.min(axis=axes)
    elif method == "rescale":
        shift, scale = np.zeros(1, train.dtype), np.array([np.abs(train).max()], train.dtype)
    else:
        raise SystemExit(f"plain_fit: scale_x={method!r} is not supported")
    scale = np.where(scale == 0, 1, scale).astype(train.dtype)
    return shift.astype(train.dtype), scale


def prepare(arrays, data, seed):
    if data.get("scale_y"):
        raise SystemExit("plain_fit: scale_y is not supported")
    x, y = arrays[data.get("x", "x")], arrays[data.get("y", "y")]
    if data.get("one_hot"):  # classes: the largest label + 1, over all of y (as the worker)
        y = np.eye(int(y.max()) + 1, dtype="float32")[y.astype("int64").reshape(-1)]
    n = len(x)
    order = np.random.default_rng(seed).permutation(n) if data.get("shuffle", True) else np.arange(n)
    x = x[order].astype("float32", copy=False)
    y = y[order]
    n_test = int(round(n * data.get("test_split", 0.0)))
    n_val = int(round(n * data.get("validation_split", 0.2)))
    n_train = n - n_val - n_test
    parts = {
        "train": (x[:n_train], y[:n_train]),
        "validation": (x[n_train:n_train + n_val], y[n_train:n_train + n_val]),
        "test": (x[n_train + n_val:], y[n_train + n_val:]),
    }
    parts = {k: v for k, v in parts.items() if len(v[0]) > 0}
    if data.get("scale_x"):
        shift, scale = scaler(parts["train"][0].astype("float32"), data["scale_x"])
        parts = {k: (((px.astype("float32") - shift) / scale).astype("float32"), py) for k, (px, py) in parts.items()}
    return parts


class EpochClock(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.durations, self.cpu, self.ends, self.logs = [], [], [], []
        self._started = self._cpu_started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started, self._cpu_started = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.durations.append(now - self._started)
        self.cpu.append(time.process_time() - self._cpu_started)
        self.ends.append(now)
        self.logs.append({k: float(v) for k, v in (logs or {}).items()})


def train_batches(x, y, batch_size, seed):
    import tensorflow as tf

    x, y = tf.constant(x), tf.constant(y)  # captured by reference, not copied into the graph
    order = tf.data.Dataset.from_tensor_slices(np.arange(len(x), dtype=np.int64))
    order = order.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return order.batch(batch_size).map(lambda i: (tf.gather(x, i), tf.gather(y, i))).prefetch(tf.data.AUTOTUNE)


def main(spec_path, data_path, out_path, shuffle_mode="keras", steps_per_execution=1, jit_compile="auto",
         forward_batch_size=None):
    with open(spec_path) as f:
        spec = json.load(f)
    data, fit, comp, seed = spec.get("data", {}), spec.get("fit", {}), spec["compile"], spec["seed"]
    if fit.get("callbacks"):
        raise SystemExit("plain_fit: fit.callbacks are not supported")

    t0, cpu0 = time.perf_counter(), time.process_time()
    with np.load(data_path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    parts = prepare(arrays, data, seed)
    t_prepared = time.perf_counter()

    keras.utils.set_random_seed(seed)
    layers = []
    for layer_spec in spec["model"]["layers"]:
        args = {k: v for k, v in layer_spec.items() if k != "type"}
        layers.append(getattr(keras.layers, layer_spec["type"])(**args))
    inputs = keras.Input(shape=tuple(spec["model"]["input_shape"]), name="x")
    tensor = inputs
    for layer in layers:
        tensor = layer(tensor)
    model = keras.Model(inputs, tensor, name="plain")
    model.compile(
        optimizer=keras_object(keras.optimizers, comp.get("optimizer", "adam")),
        loss=keras_object(keras.losses, comp["loss"]),
        metrics=[keras_object(keras.metrics, m) for m in comp.get("metrics", [])],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    clock = EpochClock()
    x_train, y_train = parts["train"]
    batch_size = fit.get("batch_size", 32)
    if shuffle_mode == "tfdata" and data.get("shuffle", True):
        train = {"x": train_batches(x_train, y_train, batch_size, seed)}
    else:
        train = {"x": x_train, "y": y_train, "batch_size": batch_size, "shuffle": data.get("shuffle", True)}
    t_fit = time.perf_counter()
    model.fit(
        **train,
        validation_data=parts.get("validation"),
        validation_batch_size=forward_batch_size or batch_size,
        epochs=fit.get("epochs", 10),
        callbacks=[clock],
        verbose=0,
    )
    t_fitted = time.perf_counter()
    test_metrics = None
    if "test" in parts:
        x_test, y_test = parts["test"]
        test_metrics = model.evaluate(x_test, y_test, batch_size=forward_batch_size or batch_size, verbose=0,
                                      return_dict=True)
        test_metrics = {k: float(v) for k, v in test_metrics.items()}
    with tempfile.TemporaryDirectory() as tmp:
        model.save(os.path.join(tmp, "model.keras"))
    t_done, cpu_done = time.perf_counter(), time.process_time()

    keys = []
    for logs in clock.logs:
        keys += [k for k in logs if k not in keys]
    curves = {"epoch": list(range(1, len(clock.logs) + 1))}
    curves.update({k: [logs.get(k) for logs in clock.logs] for k in keys})
    curves["duration_s"] = clock.durations
    result = {
        "curves": curves,
        "epoch_end_s": [t - t_fit for t in clock.ends],
        "epoch_cpu_s": clock.cpu,  # as the worker's RecordEpochs (its job's data.timing.epoch_cpu_s)
        "test_metrics": test_metrics,
        "splits": {k: len(v[0]) for k, v in parts.items()},
        "timings_s": {
            "import": T_IMPORTED - T_PROCESS,
            "load_prepare": t_prepared - t0,
            "build_compile": t_fit - t_prepared,
            "fit": t_fitted - t_fit,
            "evaluate_save": t_done - t_fitted,
            # What the service's job timings (started_at -> finished_at) cover.
            "job": t_done - t0,
        },
        # CPU seconds (all threads) of this process over the same span.
        "cpu_s": {"job": cpu_done - cpu0},
        "shuffle": shuffle_mode,
        "speed": {"steps_per_execution": steps_per_execution, "jit_compile": jit_compile,
                  "forward_batch_size": forward_batch_size},
        "params": model.count_params(),
        "versions": {"keras": keras.__version__, "numpy": np.__version__},
    }
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("spec"), ap.add_argument("data"), ap.add_argument("out")
    ap.add_argument("--shuffle", choices=["keras", "tfdata"], default="keras")
    ap.add_argument("--steps-per-execution", type=int, default=1)
    ap.add_argument("--jit-compile", choices=["auto", "true", "false"], default="auto")
    ap.add_argument("--forward-batch-size", type=int, help="validation and test batches (default: batch_size)")
    a = ap.parse_args()
    jit = {"auto": "auto", "true": True, "false": False}[a.jit_compile]
    main(a.spec, a.data, a.out, shuffle_mode=a.shuffle, steps_per_execution=a.steps_per_execution, jit_compile=jit,
         forward_batch_size=a.forward_batch_size)
