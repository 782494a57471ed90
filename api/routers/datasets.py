from typing import Annotated

from fastapi import APIRouter, File, Request, Response, UploadFile

from api.deps import PageDep, SettingsDep, StoreDep, UoW
from api.errors import PayloadTooLarge
from api.schemas.common import ListPage
from api.schemas.datasets import DatasetOut, dataset_out
from api.schemas.errors import error_responses
from api.services import datasets as service

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


@router.post("", status_code=201, response_model=DatasetOut,
             summary="Upload a dataset: .npz (no pickles), .csv with a header, or .zip of class folders of "
                     "images; 200 if the same content exists",
             description="A multipart form with one part, `file`. The file name's extension picks the format: "
                         "`.npz` (numpy.savez arrays; pickled or object arrays are refused), `.csv` (a header "
                         "row, numeric columns) or `.zip` (one folder per class, holding images). Anything else "
                         "is a 415. The same content uploaded again answers 200 with the existing dataset.",
             responses={200: {"description": "the same content was uploaded before: that dataset",
                              "model": DatasetOut}, **error_responses(400, 413, 415)})
def upload_dataset(
    file: Annotated[UploadFile, File(description=".npz archive, .csv table or .zip of <class>/<image> files")],
    uow: UoW, settings: SettingsDep, store: StoreDep, request: Request, response: Response,
) -> DatasetOut:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes + 64 * 1024:
        raise PayloadTooLarge(f"the upload is larger than the limit of {settings.max_upload_bytes} bytes")
    dataset, new = service.upload_dataset(
        uow.session, store, filename=file.filename or "", source=file.file,
        settings=settings,
    )
    response.status_code = 201 if new else 200
    response.headers["Location"] = f"/v1/datasets/{dataset.id}"
    return dataset_out(dataset)


@router.get("", response_model=ListPage[DatasetOut], summary="List datasets (built-ins first)",
            responses=error_responses())
def list_datasets(uow: UoW, page: PageDep) -> ListPage[DatasetOut]:
    datasets = service.list_datasets(uow.session, page)  # descriptions only from GET /v1/datasets/{id}
    return ListPage(items=[dataset_out(d, full=False) for d in datasets.items], next_cursor=datasets.next_cursor)


@router.get("/{dataset_id}", response_model=DatasetOut, summary="One dataset with its description",
            responses=error_responses(404))
def get_dataset(dataset_id: str, uow: UoW) -> DatasetOut:
    return dataset_out(service.get_dataset(uow.session, dataset_id))


@router.delete("/{dataset_id}", status_code=204, summary="Delete (409 while a queued or running job uses it)",
               responses=error_responses(404, 409))
def delete_dataset(dataset_id: str, uow: UoW, store: StoreDep) -> Response:
    deleted = service.delete_dataset(uow.session, dataset_id)
    uow.after_commit(lambda: service.release_files(uow.session, store, deleted))
    return Response(status_code=204)
