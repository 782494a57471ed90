"""Uploads that cost far more than their size: member counts, hostile .npy headers, wide CSVs, huge images.

The probes that would exhaust a process (descriptors, memory) run ``ingest`` in a child process
under a hard limit (RLIMIT_NOFILE, RLIMIT_AS), so a regression fails the child, never the machine.
"""

import io
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from datastore.errors import DatasetFileError
from datastore.ingest import ingest
from datastore.limits import Limits
from datastore.reader import open_directory
from tests.data_files import image_png, npz_bytes

ROOT = Path(__file__).resolve().parents[2]


def npy_with_header(shape: tuple, data: bytes = b"\0" * 64, descr: str = "<f8") -> bytes:
    """A .npy whose header is written as given (numpy's writer refuses nothing here)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue() + data


def npz_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def run_capped(tmp_path: Path, body: str, *, address_space: int | None = None, descriptors: int | None = None):
    """Run ``body`` (with ``ingest``, ``Limits``, ``Path`` and ``tmp`` defined) in a child under hard limits."""
    script = textwrap.dedent("""
        import resource, sys
        from pathlib import Path
        from datastore.ingest import ingest
        from datastore.limits import Limits
        tmp = Path(sys.argv[1])
        if {descriptors!r}:
            resource.setrlimit(resource.RLIMIT_NOFILE, ({descriptors!r}, {descriptors!r}))
        if {address_space!r}:
            resource.setrlimit(resource.RLIMIT_AS, ({address_space!r}, {address_space!r}))
    """).format(descriptors=descriptors, address_space=address_space) + textwrap.dedent(body)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True,
                          check=False)


def refused(tmp_path: Path, name: str, content: bytes, limits: Limits = Limits()) -> DatasetFileError:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DatasetFileError) as caught:
        ingest(tmp_path / name, Path(name).suffix, tmp_path / "staging", limits)
    return caught.value


# ---- .npz: members ---------------------------------------------------------------------------------

def test_an_npz_with_more_members_than_the_limit_is_refused_from_its_directory(tmp_path):
    content = npz_of({f"a{i}.npy": b"never read" for i in range(30)})  # not even valid arrays

    error = refused(tmp_path, "d.npz", content, Limits(max_npz_members=20))

    assert error.too_large and "holds 30 arrays, more than the limit of 20" in str(error)


def test_a_thousand_arrays_ingest_and_describe_with_few_descriptors(tmp_path):
    """Every stored array used to stay mapped (one descriptor each) through ingest and description."""
    arrays = {f"a{i:04d}": np.full((3, 2), i, np.float32) for i in range(1000)}
    (tmp_path / "many.npz").write_bytes(npz_bytes(**arrays))

    child = run_capped(tmp_path, """
        result = ingest(tmp / "many.npz", ".npz", tmp / "stored", Limits())
        assert result.description["arrays"]["a0999"]["stats"]["overall"]["max"] == 999.0
        from datastore.reader import open_directory
        dataset = open_directory(tmp / "stored")
        assert sum(float(dataset[name][0, 0]) for name in dataset) == sum(range(1000))
        print("ok", len(result.arrays))
    """, descriptors=64)

    assert child.returncode == 0, child.stderr[-3000:]
    assert "ok 1000" in child.stdout


# ---- .npy headers ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("shape", "fragment"), [
    ((-1, 4), "negative dimension"),
    ((4, -2), "negative dimension"),
    ((2**62, 2**62), "too large to address"),
    ((2**40, 8), "truncated"),  # fits int64, far beyond the member's real size
])
def test_hostile_npy_shapes_are_refused_naming_the_member(tmp_path, shape, fragment):
    error = refused(tmp_path, "d.npz", npz_of({"x.npy": npy_with_header(shape)}))

    assert fragment in str(error) and error.loc == ("file", "x.npy")


def test_a_member_whose_header_outgrows_the_member_is_refused_before_it_is_unpacked(tmp_path):
    # The header claims 8 GB; the member holds 64 bytes. Only the valid member before it was unpacked.
    y = io.BytesIO()
    np.save(y, np.zeros(3))
    error = refused(tmp_path, "d.npz", npz_of({"y.npy": y.getvalue(), "x.npy": npy_with_header((2**30, 1))}))

    assert "truncated" in str(error) and error.loc == ("file", "x.npy")
    assert sorted(p.name for p in (tmp_path / "staging").iterdir()) == ["a000.npy"]


def test_the_same_array_twice_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", npy_with_header((8,)))
        archive.writestr("x.npy", npy_with_header((8,)))
    assert "'x' twice" in str(refused(tmp_path, "d.npz", buffer.getvalue()))


# ---- wide data -------------------------------------------------------------------------------------

def test_a_csv_wider_than_the_limit_is_refused_on_its_header(tmp_path):
    header = ",".join(f"c{i}" for i in range(4097))
    error = refused(tmp_path, "t.csv", (header + "\n" + ",".join("1" * 4097) + "\n").encode())
    assert error.too_large and "4097 columns, more than the limit of 4096" in str(error)


def test_a_header_of_millions_of_columns_is_refused_while_it_is_read(tmp_path):
    error = refused(tmp_path, "t.csv", b"a," * 2_000_000 + b"a\n1\n")
    assert error.too_large and "the header" in str(error)


def test_a_row_of_millions_of_fields_is_refused_while_it_is_read(tmp_path):
    error = refused(tmp_path, "t.csv", b"a,b\n1,2\n" + b"," * 20_000_000 + b"\n")
    assert error.too_large and "the row after line 2" in str(error)


def test_a_csv_at_the_column_limit_is_stored_with_per_column_statistics(tmp_path):
    columns = 4096
    rows = np.arange(5 * columns, dtype=np.int64).reshape(5, columns)
    text = ",".join(f"c{i}" for i in range(columns)) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n"
    (tmp_path / "wide.csv").write_text(text)

    result = ingest(tmp_path / "wide.csv", ".csv", tmp_path / "stored", Limits(max_csv_columns=columns))

    last = result.description["arrays"]["c4095"]["stats"]
    assert last["max"] == [float(rows[:, -1].max())] and last["overall"]["min"] == float(rows[:, -1].min())
    assert result.description["columns"][-1] == "c4095"


def test_a_wide_dense_array_describes_overall_figures_only(tmp_path):
    x = np.arange(6 * 5000, dtype=np.float32).reshape(6, 5000)
    (tmp_path / "w.npz").write_bytes(npz_bytes(x=x))

    stats = ingest(tmp_path / "w.npz", ".npz", tmp_path / "stored", Limits()).description["arrays"]["x"]["stats"]

    assert stats["features"] == 5000 and stats["mean"] is None and stats["min"] is None
    assert stats["overall"]["max"] == float(x.max())  # evenly spaced values: both ends are in
    assert stats["overall"]["mean"] == pytest.approx(float(x.mean(dtype=np.float64)), rel=1e-3)
    assert stats["overall"]["std"] == pytest.approx(float(x.std(dtype=np.float64)), rel=1e-3)


# ---- images ----------------------------------------------------------------------------------------

def big_image_zip() -> bytes:
    """A few KB: two 6000x6000 PNGs (36 MP each, under the 40 MP limit) of stripes."""
    pixels = np.zeros((6000, 6000, 3), np.uint8)
    pixels[::7, :, 0], pixels[:, ::5, 2] = 200, 90
    png = image_png(pixels)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cats/big.png", png)
        archive.writestr("dogs/big.png", png)
    return buffer.getvalue()


def test_huge_images_ingest_under_a_one_gib_address_space_cap(tmp_path):
    """Statistics used to convert every pixel to float64 several times: 4 GB of address space for this
    upload. The child's own need (Python, NumPy, Pillow) is about 110 MB before ingest; decoding one
    36 MP image takes 108 MB."""
    (tmp_path / "big.zip").write_bytes(big_image_zip())

    child = run_capped(tmp_path, """
        result = ingest(tmp / "big.zip", ".zip", tmp / "stored", Limits())
        entry = result.description["arrays"]["x"]
        print(entry["image_sizes"]["width"]["max"], entry["stats"]["overall"]["max"], entry["stats"]["overall"]["mean"])
    """, address_space=1024**3)

    assert child.returncode == 0, child.stderr[-3000:]
    width, largest, mean = child.stdout.split()
    assert width == "6000" and float(largest) == 200.0
    assert float(mean) == pytest.approx((200 / 7 + 90 / 5) / 3, rel=0.05)  # a fair sample of the stripes


def test_pixel_statistics_of_a_large_image_match_the_whole_image(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (1500, 1200, 3), dtype=np.uint8)
    (tmp_path / "i.zip").write_bytes(npz_of({"a/x.png": image_png(pixels), "b/y.png": image_png(pixels[::-1])}))

    stats = ingest(tmp_path / "i.zip", ".zip", tmp_path / "stored", Limits()).description["arrays"]["x"]["stats"]

    np.testing.assert_allclose(stats["mean"], pixels.reshape(-1, 3).mean(axis=0), rtol=0.02)
    np.testing.assert_allclose(stats["std"], pixels.reshape(-1, 3).std(axis=0), rtol=0.02)
    assert open_directory(tmp_path / "stored")["x"].shape[0] == 2


def test_one_huge_sample_is_described_on_bounded_memory(tmp_path):
    """A single 400 MB row used to be read whole and converted to float64 several times over."""
    buffer = io.BytesIO()
    x = np.zeros((1, 100_000_000), np.float32)
    x[0, ::1000] = 5.0
    np.savez_compressed(buffer, x=x)
    (tmp_path / "row.npz").write_bytes(buffer.getvalue())
    del x

    child = run_capped(tmp_path, """
        stats = ingest(tmp / "row.npz", ".npz", tmp / "stored", Limits()).description["arrays"]["x"]["stats"]
        print(stats["features"], stats["overall"]["max"], stats["overall"]["min"], stats["sampled"])
    """, address_space=1024**3)

    assert child.returncode == 0, child.stderr[-3000:]
    assert child.stdout.split() == ["100000000", "5.0", "0.0", "True"]


def test_samples_larger_than_a_chunk_keep_exact_per_feature_statistics(tmp_path):
    x = np.random.default_rng(1).normal(size=(2, 700, 300))  # 1.7 MB a sample: read as rows of 300
    (tmp_path / "x.npz").write_bytes(npz_bytes(x=x))

    stats = ingest(tmp_path / "x.npz", ".npz", tmp_path / "stored", Limits()).description["arrays"]["x"]["stats"]

    np.testing.assert_allclose(stats["mean"], x.reshape(-1, 300).mean(axis=0))
    np.testing.assert_allclose(stats["std"], x.reshape(-1, 300).std(axis=0))
    assert stats["features"] == 300 and stats["sampled"] is False


def test_a_large_jpeg_is_checked_at_reduced_scale_but_described_at_its_real_size(tmp_path):
    pixels = np.zeros((3000, 4000, 3), np.uint8)
    pixels[:, 2000:] = 255
    jpeg = image_png(pixels, "JPEG")
    (tmp_path / "j.zip").write_bytes(npz_of({"a/x.jpg": jpeg, "b/y.jpg": jpeg}))

    entry = ingest(tmp_path / "j.zip", ".zip", tmp_path / "stored", Limits()).description["arrays"]["x"]

    assert entry["image_sizes"]["width"]["max"] == 4000 and entry["image_sizes"]["height"]["max"] == 3000
    assert entry["modes"] == {"RGB": 2} and entry["stats"]["overall"]["mean"] == pytest.approx(127.5, abs=3)
    truncated = npz_of({"a/x.jpg": jpeg[: len(jpeg) // 2]})
    assert "does not decode" in str(refused(tmp_path, "t.zip", truncated))


def test_text_categories_are_bounded_across_columns(tmp_path, monkeypatch):
    from datastore import csvfile

    monkeypatch.setattr(csvfile, "MAX_TOTAL_CATEGORIES", 50)
    rows = "\n".join(f"a{i},b{i},{i}" for i in range(30))

    error = refused(tmp_path, "t.csv", f"a,b,n\n{rows}\n".encode())  # 60 categories in two columns

    assert error.too_large and "more than 50 distinct values together" in str(error)


def test_numeric_columns_with_few_values_still_count_labels(tmp_path):
    (tmp_path / "t.csv").write_text("x,y\n" + "".join(f"{i * 0.5},{i % 3}\n" for i in range(3000)))

    arrays = ingest(tmp_path / "t.csv", ".csv", tmp_path / "stored", Limits()).description["arrays"]

    assert arrays["y"]["label_counts"] == {"0": 1000, "1": 1000, "2": 1000} and arrays["x"]["label_counts"] is None
