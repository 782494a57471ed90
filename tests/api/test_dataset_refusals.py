"""Bad uploads: each one refused with a 4xx that names the problem, and nothing stored (no file, no row)."""

import io
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.api.test_datasets import dataset_count, stored_files, upload
from tests.data_files import image_png, image_zip, npz_bytes, sequences


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(zipfile.ZipInfo(name), content)
    return buffer.getvalue()


def with_symlink() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cats/a.png", image_png(np.zeros((4, 4), np.uint8)))
        link = zipfile.ZipInfo("cats/b.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return buffer.getvalue()


def truncated_npy_member() -> bytes:
    """A valid zip whose .npy member says (1000, 10) float64 but holds 10 rows."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (1000, 10)})
    return zip_of({"x.npy": header.getvalue() + np.zeros((10, 10)).tobytes()})


def npy_shaped(shape: tuple) -> bytes:
    """A .npy member whose header declares ``shape`` over 64 bytes of data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return header.getvalue() + bytes(64)


def cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (4, 4)).save(buffer, format="JPEG")
    return buffer.getvalue()


PNG = image_png(np.zeros((8, 8), np.uint8))
SEQ = sequences(n=10)
CASES = {
    # .npz
    "pickled object arrays": ("d.npz", npz_bytes(x=np.array([{"a": 1}, None], dtype=object)), 422, "pickled"),
    "truncated npz": ("d.npz", npz_bytes(x=np.arange(10))[:40], 422, "not a valid .npz"),
    "garbage": ("d.npz", b"garbage" * 10, 422, "not a valid .npz"),
    "empty file": ("d.npz", b"", 422, "empty"),
    "text arrays": ("d.npz", npz_bytes(x=np.array(["a", "b"])), 422, "only numeric arrays"),
    "truncated member": ("d.npz", truncated_npy_member(), 422, "truncated"),
    "x/y lengths differ": ("d.npz", npz_bytes(x=np.zeros((10, 2)), y=np.zeros(9)), 422,
                           "'x' has 10 samples, 'y' has 9"),
    "sequence lengths differ from steps": (
        "d.npz", npz_bytes(x_values=SEQ["x_values"], x_lengths=SEQ["x_lengths"] + 1), 422, "must be equal"),
    "empty sequence": ("d.npz", npz_bytes(x_values=np.zeros((3, 2)), x_lengths=np.array([3, 0])), 422,
                       "at least one step"),
    "npz member in a folder": ("d.npz", zip_of({"a/x.npy": b"x"}), 422, "not an array"),
    "negative dimension": ("d.npz", zip_of({"x.npy": npy_shaped((-3, 2))}), 422, "array 'x' declares a negative"),
    "shape overflowing int64": ("d.npz", zip_of({"x.npy": npy_shaped((2**40, 2**40))}), 422, "too large to address"),
    "shape beyond the member": ("d.npz", zip_of({"x.npy": npy_shaped((2**20, 4))}), 422, "array 'x' is truncated"),
    # .zip of images
    "path escaping the zip": ("i.zip", zip_of({"cats/a.png": PNG, "../evil.png": PNG}), 422, "outside the archive"),
    "absolute path": ("i.zip", zip_of({"/etc/cats/a.png": PNG}), 422, "outside the archive"),
    "symbolic link": ("i.zip", with_symlink(), 422, "symbolic link"),
    "image that does not decode": ("i.zip", image_zip(per_class=2, extra={"shapes/vertical/bad.png": b"not a png"}),
                                   422,
                                   "'shapes/vertical/bad.png' does not decode"),
    "truncated image": ("i.zip", zip_of({"cats/a.png": PNG, "dogs/b.png": PNG[: len(PNG) // 2]}), 422,
                        "does not decode"),
    "CMYK jpeg": ("i.zip", zip_of({"cats/a.jpg": cmyk_jpeg()}), 422, "CMYK mode"),
    "no class folders": ("i.zip", zip_of({"a.png": PNG, "notes.txt": b"hi"}), 422, "no images in class folders"),
    "not a zip": ("i.zip", b"PK\x03\x04 but not really", 422, "not a zip archive"),
    # .csv
    "ragged row": ("t.csv", b"a,b\n1,2\n3\n", 422, "line 3 has 1 fields but the header has 2"),
    "empty cell": ("t.csv", b"a,b\n1,2\n3,\n", 422, "line 3, column 'b' is empty"),
    "nan cell": ("t.csv", b"a,b\n1,2\n3,nan\n", 422, "missing or infinite"),
    "header only": ("t.csv", b"a,b\n", 422, "no data rows"),
    "duplicate header": ("t.csv", b"a,a\n1,2\n", 422, "names column 'a' twice"),
    "numbers mixed with text": ("t.csv", b"a,b\n1,2\nthree,4\n", 422, "mixes numbers and text"),
    "4097 columns": ("t.csv", (",".join(f"c{i}" for i in range(4097)) + "\n" + ",".join("1" * 4097) + "\n").encode(),
                     413, "4097 columns, more than the limit of 4096"),
    "not utf-8": ("t.csv", "a,b\n1,\u00e9\n".encode("latin-1"), 422, "not UTF-8"),
    # any
    "unsupported type": ("data.exe", b"a,b\n1,2\n", 415, "unsupported file type"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_files_are_refused_and_leave_nothing(client, db_session, settings, case):
    filename, content, status, fragment = CASES[case]
    before = dataset_count(db_session)

    response = upload(client, content, filename)

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert fragment in error["message"], error
    if status == 415:  # the file name's type: said in the message only
        assert error["details"] == []
    else:
        assert error["details"] and error["details"][0]["loc"][0] == "file", error
    assert dataset_count(db_session) == before
    assert stored_files(settings) == []


@pytest.mark.parametrize("content", [zip_of({"x.npy": npy_shaped((-3, 2))}), zip_of({"x.npy": npy_shaped((2**20, 4))})])
def test_a_hostile_npy_header_is_named_in_the_error_location(client, content):
    details = upload(client, content, "d.npz").json()["error"]["details"]
    assert details[0]["loc"] == ["file", "x.npy"]


def test_an_npz_with_more_arrays_than_the_limit_is_413(client, db_session, settings):
    settings.max_npz_members = 5
    response = upload(client, npz_bytes(**{f"a{i}": np.zeros(2) for i in range(6)}))
    assert response.status_code == 413
    assert "holds 6 arrays, more than the limit of 5" in response.json()["error"]["message"]
    assert dataset_count(db_session) == 0 and stored_files(settings) == []


def test_a_csv_wider_than_the_setting_is_413(client, db_session, settings):
    settings.max_csv_columns = 3
    response = upload(client, b"a,b,c,d\n1,2,3,4\n", "t.csv")
    assert response.status_code == 413 and "4 columns, more than the limit of 3" in response.json()["error"]["message"]
    assert dataset_count(db_session) == 0 and stored_files(settings) == []


def test_an_undecodable_image_is_named_in_the_error_location(client):
    content = image_zip(per_class=1, extra={"shapes/vertical/bad.png": b"not a png"})
    details = upload(client, content, "i.zip").json()["error"]["details"]
    assert details[0]["loc"] == ["file", "shapes/vertical/bad.png"]


def test_too_large_upload_is_413_and_leaves_nothing(client, db_session, settings):
    settings.max_upload_bytes = 1000
    response = upload(client, npz_bytes(x=np.zeros(1000)))
    assert response.status_code == 413 and "larger than the limit of 1000 bytes" in response.json()["error"]["message"]
    assert dataset_count(db_session) == 0 and stored_files(settings) == []


@pytest.mark.parametrize(("limit", "value", "content", "fragment"), [
    ("max_unpacked_bytes", 100_000, zip_of({"cats/a.png": b"\0" * 1_000_000}), "zip bomb"),
    ("max_unpacked_bytes", 100_000, npz_bytes(x=np.zeros(100_000)), "zip bomb"),
    ("max_archive_members", 3, image_zip(per_class=2), "more than the limit of 3"),
])
def test_archives_past_the_unpacking_limits_are_413(client, db_session, settings, limit, value, content, fragment):
    setattr(settings, limit, value)
    response = upload(client, content, "d.npz" if content.startswith(b"PK") and b".npy" in content else "i.zip")
    assert response.status_code == 413 and fragment in response.json()["error"]["message"]
    assert dataset_count(db_session) == 0 and stored_files(settings) == []


def test_an_image_over_the_pixel_limit_is_refused_as_a_decompression_bomb(client, settings):
    settings.max_image_pixels = 100
    response = upload(client, zip_of({"cats/a.png": image_png(np.zeros((20, 20), np.uint8))}), "i.zip")
    assert response.status_code == 422 and "decompression bomb" in response.json()["error"]["message"]
    assert stored_files(settings) == []
