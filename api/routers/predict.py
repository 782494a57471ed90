"""``POST /v1/jobs/{id}/predict``: a finished job's model on new rows, in a validator child.

The API imports no Keras: the saved model is loaded and run by the validator pool
(``keras_bridge.predict``), under its memory and time limits and per-tenant turns.
The rows are bounded by the request body limit (413) and ``MAX_ROWS`` (413).
"""

import io
import json
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request

from api.deps import StoreDep, UoW, ValidatorDep
from api.errors import Invalid, PayloadTooLarge, TooManyRequests, Unavailable, detail
from api.schemas.errors import error_responses
from api.services import jobs as service
from api.validation.pool import ChildFailed, PoolBusy

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
MAX_ROWS = 10_000
NPZ_TYPES = ("application/octet-stream", "application/x-npz", "application/zip")

PREDICT_BODY = {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "required": ["x"], "additionalProperties": False,
                                    "properties": {"x": {"type": "array", "items": {},
                                                         "description": "rows, each of the model's input shape"}}},
                         "example": {"x": [[5.1, 3.5, 1.4, 0.2]]}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": ".npz holding `x` (or a single array)"}}}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary",
                                            "description": "the .npz file itself"}}}}
PREDICT_OUT = {"type": "object", "required": ["predictions", "rows"], "properties": {
    "rows": {"type": "integer"},
    "predictions": {"type": "array", "items": {}, "description": "the model's outputs, one per row"},
    "classes": {"type": ["array", "null"], "items": {"type": "string"},
                "description": "classifiers: the class names (the dataset's, else the class indices)"},
    "predicted_class": {"type": "array", "items": {"type": "string"},
                        "description": "classifiers: the most probable class of each row"},
    "probabilities": {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
                      "description": "classifiers: each row's class probabilities"}}}


def _invalid(message: str) -> Invalid:
    return Invalid(message, [detail(("x",), message)])


def _npz_rows(raw: bytes) -> np.ndarray:
    try:
        loaded = np.load(io.BytesIO(raw), allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # a plain .npy is taken too
            return loaded
        with loaded as arrays:
            names = list(arrays.files)
            key = "x" if "x" in names else (names[0] if len(names) == 1 else None)
            if key is None:
                raise _invalid(f"the .npz holds {names[:10]}: name the rows 'x'")
            return np.asarray(arrays[key])
    except Invalid:
        raise
    except Exception as exc:  # noqa: BLE001  (numpy and zipfile raise many kinds on a damaged file)
        raise _invalid(f"not a readable .npz file: {type(exc).__name__}: {exc}") from exc


async def read_rows(request: Request) -> list[Any]:
    """The rows: JSON ``{"x": [...]}``, a multipart ``file`` (.npz) or the .npz as the body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise _invalid("the multipart form needs a 'file' part holding an .npz")
        rows = _npz_rows(await upload.read())
    elif kind in NPZ_TYPES:
        rows = _npz_rows(await request.body())
    else:
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError) as exc:
            raise _invalid(f"the body is not JSON: {exc}") from exc
        if not isinstance(body, dict) or set(body) != {"x"} or not isinstance(body["x"], list):
            raise _invalid('send {"x": [row, ...]}: a list of rows and nothing else')
        try:
            rows = np.asarray(body["x"])
        except (TypeError, ValueError) as exc:
            raise _invalid(f"x must be a rectangular array of numbers: {exc}") from exc
    if rows.dtype.kind not in "biuf":  # strings, ragged rows (object), anything else
        raise _invalid(f"x must be a rectangular array of numbers, not {rows.dtype}")
    if len(rows) > MAX_ROWS:
        raise PayloadTooLarge(f"{len(rows)} rows: at most {MAX_ROWS} per request", [
            detail(("x",), f"at most {MAX_ROWS} rows per request")])
    if len(rows) == 0:
        raise _invalid("x holds no rows")
    return rows.tolist()


@router.post("/{job_id}/predict", summary="Predictions of the job's model on new rows",
             description="The model the job keeps (the best epoch's when the spec asked for a keep-best checkpoint), "
                         "run on the rows, scaled as training scaled them (`data.scale_x`). Classifiers (a softmax or "
                         "sigmoid output over classes) also get the class names and probabilities. 409 while the job "
                         "runs; 422 at `x` when the rows do not fit the model's input shape; 413 past "
                         f"{MAX_ROWS} rows or the request body limit.",
             openapi_extra={"requestBody": PREDICT_BODY},
             responses={200: {"description": "the predictions", "content": {"application/json": {
                 "schema": PREDICT_OUT}}}, **error_responses(404, 409, 413, 429)})
def predict(job_id: str, rows: Annotated[list[Any], Depends(read_rows)], uow: UoW, store: StoreDep,
            validator: ValidatorDep) -> dict[str, Any]:
    job = service.get_job(uow.session, job_id)
    model = service.model_file(job, store)
    classes, job_spec = (job.data_summary or {}).get("classes"), job.spec
    uow.session.commit()  # the reads are done: no database connection is held while the model runs
    request = {"kind": "predict", "model": str(model), "scaler": str(store.scaler_path(job_id)), "x": rows}
    try:
        answer = validator.run(request, tenant=uow.tenant)
    except PoolBusy as busy:
        raise TooManyRequests(busy.message, retry_after_s=busy.retry_after_s) from busy
    except ChildFailed as failed:
        raise Unavailable(f"the predictions could not be made: {failed}") from failed
    if "shape_error" in answer:
        shapes = answer["shape_error"]
        raise _invalid(f"x: the model expects rows of shape {shapes['expected']} (None: any number of rows), "
                       f"received {shapes['received']}")
    return _answer(answer["predictions"], classes, job_spec)


def _answer(predictions: list[Any], classes: list[str] | None, spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": len(predictions), "predictions": predictions}
    outputs = np.asarray(predictions)
    layers = spec.get("model", {}).get("layers") or [{}]
    activation = layers[-1].get("activation") if isinstance(layers[-1], dict) else None
    if activation == "softmax" and outputs.ndim == 2 and outputs.shape[1] > 1:
        probabilities = outputs
    elif activation == "sigmoid" and outputs.ndim == 2 and outputs.shape[1] == 1:
        probabilities = np.concatenate([1 - outputs, outputs], axis=1)  # binary: P(class 0), P(class 1)
    else:
        return out  # a regressor, or outputs this cannot read as class probabilities
    width = probabilities.shape[1]
    names = [str(c) for c in (classes if classes and len(classes) == width else range(width))]
    out.update(classes=names, probabilities=probabilities.tolist(),
               predicted_class=[names[i] for i in probabilities.argmax(axis=1).tolist()])
    return out
