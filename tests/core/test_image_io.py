"""Tests for napari_lesionmix.core.image_io (and nifti_check): read_image, write_image."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from napari_lesionmix.core.case import Case
from napari_lesionmix.core.errors import CaseError
from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.image_io import read_image, write_image
from tests.core.image_helpers import (
    assert_geometry_close,
    lps_geometry,
    no_temp_files,
    oblique_geometry,
    rng_image,
    rng_labels,
    sitk_write,
)

FORMATS = [".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd"]


# ------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32])
def test_write_read_round_trip(tmp_path, ext, ndim, dtype):
    shape = (5, 6, 7) if ndim == 3 else (6, 7)
    arr = rng_image(shape, dtype)
    g = oblique_geometry(ndim)
    p = tmp_path / f"img{ext}"
    write_image(arr, g, p)
    back, g2, dt = read_image(p)
    assert dt == np.dtype(dtype).name
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    assert_geometry_close(g, g2, ext)
    # a second cycle does not drift beyond the format's precision
    p2 = tmp_path / f"again{ext}"
    write_image(back, g2, p2)
    back2, g3, _ = read_image(p2)
    np.testing.assert_array_equal(back2, arr)
    assert_geometry_close(g2, g3, ext)
    assert no_temp_files(tmp_path)


def test_nifti_geometry_precision_is_float32():
    """Document the finding: NIfTI keeps geometry to float32, other formats to float64."""
    g = oblique_geometry(3)
    arr = np.zeros((2, 3, 4), np.int16)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        errs = {}
        for ext in (".nii.gz", ".nrrd", ".mha"):
            write_image(arr, g, Path(d) / f"x{ext}")
            g2 = read_image(Path(d) / f"x{ext}")[1]
            errs[ext] = max(
                np.max(np.abs(np.subtract(g.spacing, g2.spacing)) / np.array(g.spacing)),
                np.max(np.abs(np.subtract(g.origin, g2.origin)) / np.abs(g.origin)),
                np.max(np.abs(np.subtract(g.direction, g2.direction))),
            )
        # float32 has a 2^-24 ≈ 6e-8 relative rounding step
        assert 1e-9 < errs[".nii.gz"] < 1e-6
        assert errs[".nrrd"] < 1e-15
        assert errs[".mha"] == 0.0
        # values exactly representable in float32 with an axis-aligned direction
        # are exact in NIfTI too
        g32 = lps_geometry()
        write_image(arr, g32, Path(d) / "y.nii.gz")
        assert read_image(Path(d) / "y.nii.gz")[1] == g32


def test_nii_gz_is_compressed_and_level_is_honoured(tmp_path):
    arr = np.tile(np.arange(64, dtype=np.int16), (32, 64, 1))
    arr += rng_image(arr.shape, np.int16) // 100
    g = Geometry.identity(3)
    write_image(arr, g, tmp_path / "a.nii.gz")
    with open(tmp_path / "a.nii.gz", "rb") as f:
        assert f.read(2) == b"\x1f\x8b"
    write_image(arr, g, tmp_path / "fast.nii.gz", compression_level=1)
    write_image(arr, g, tmp_path / "small.nii.gz", compression_level=9)
    assert os.path.getsize(tmp_path / "small.nii.gz") < os.path.getsize(tmp_path / "fast.nii.gz")
    np.testing.assert_array_equal(read_image(tmp_path / "small.nii.gz")[0], arr)
    write_image(arr, g, tmp_path / "plain.nii")
    assert os.path.getsize(tmp_path / "plain.nii") > os.path.getsize(tmp_path / "a.nii.gz")
    with pytest.raises(ValueError):
        write_image(arr, g, tmp_path / "bad.nii.gz", compression_level=12)


# ------------------------------------------------------------------------- DICOM

SERIES_A = "1.2.826.0.1.3680043.2.1125.1.101"
SERIES_B = "1.2.826.0.1.3680043.2.1125.1.102"


def write_dicom_series(arr, spacing, origin, folder: Path, series_uid: str, prefix="s"):
    """One file per slice with the tags a series reader needs (positions, UIDs, order)."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(arr.shape[0]):
        sl = sitk.GetImageFromArray(arr[k])
        sl.SetSpacing(spacing[:2])
        pos = (origin[0], origin[1], origin[2] + k * spacing[2])
        tags = {
            "0008|0060": "MR",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1.1",
            "0020|000e": series_uid,
            "0008|0018": f"{series_uid}.{k + 1}",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0032": "\\".join(f"{v:.4f}" for v in pos),
            "0020|0013": str(k + 1),
            "0018|0050": str(spacing[2]),
        }
        for tag, value in tags.items():
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{prefix}{k:03d}.dcm"))
        writer.Execute(sl)


def test_dicom_series_folder(tmp_path):
    arr = rng_image((5, 6, 7), np.int16)
    write_dicom_series(arr, (0.8, 0.9, 2.5), (-10.0, 20.0, 30.0), tmp_path / "dcm", SERIES_A)
    back, g, dt = read_image(tmp_path / "dcm")
    assert back.shape == (5, 6, 7) and dt == "int16"
    np.testing.assert_array_equal(back, arr)
    np.testing.assert_allclose(g.spacing, (0.8, 0.9, 2.5), rtol=1e-6)
    np.testing.assert_allclose(g.origin, (-10.0, 20.0, 30.0), atol=1e-6)
    assert g.is_axis_aligned
    # a DICOM folder as a case channel, with a NIfTI label on its grid
    lpath = sitk_write(rng_labels(arr.shape), g, tmp_path / "lab.nii.gz")
    case = Case.read(tmp_path / "dcm", lpath)
    assert case.image_dtypes == ["int16"]


def test_dicom_several_series_needs_a_choice(tmp_path):
    folder = tmp_path / "dcm"
    write_dicom_series(rng_image((3, 4, 5)), (1.0, 1.0, 2.0), (0, 0, 0), folder, SERIES_A, "a")
    write_dicom_series(rng_image((4, 4, 5)), (1.0, 1.0, 3.0), (0, 0, 0), folder, SERIES_B, "b")
    with pytest.raises(CaseError) as err:
        read_image(folder)
    msg = str(err.value)
    assert "dcm" in msg and SERIES_A in msg and SERIES_B in msg
    back, g, _ = read_image(folder, series_id=SERIES_B)
    assert back.shape == (4, 4, 5)
    np.testing.assert_allclose(g.spacing[2], 3.0)
    with pytest.raises(CaseError, match="no DICOM series"):
        read_image(folder, series_id="1.2.3")


def test_folder_without_dicom(tmp_path):
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(CaseError, match="empty_dir.*no DICOM series"):
        read_image(tmp_path / "empty_dir")


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".mha"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nonfinite_values_survive_reading(tmp_path, ext, dtype):
    """ITK 5.4's NIfTI reader turns NaN/Inf into 0; read_image must give them back."""
    arr = rng_image((40, 80, 100), dtype)  # > one 1 MiB chunk, so chunk seams are crossed
    flat = arr.reshape(-1)
    where = [0, 12345, 262055, 262056, 262057, flat.size - 1]
    flat[where] = [np.nan, np.inf, -np.inf, np.nan, np.inf, np.nan]
    p = sitk_write(arr, Geometry.identity(3), tmp_path / f"f{ext}")
    back, _, dt = read_image(p)
    assert dt == np.dtype(dtype).name
    np.testing.assert_array_equal(back, arr)  # NaN compare equal here
    with pytest.raises(CaseError, match=rf"f{re.escape(ext)}: 6 voxel\(s\) are NaN or Inf"):
        Case.read(p, None)


def _sitk_read(path):
    img = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(img), Geometry.from_sitk(img)


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.uint16, np.int32, np.uint32,
                                   np.int64, np.float32, np.float64])
@pytest.mark.parametrize("geometry", ["2d", "identity", "lps", "oblique", "one_slice"])
def test_nifti_voxels_are_simpleitks(tmp_path, ext, dtype, geometry):
    """Our one-pass NIfTI read gives SimpleITK's array and geometry exactly."""
    shape = {"2d": (9, 11), "one_slice": (1, 9, 11)}.get(geometry, (5, 9, 11))
    geo = {"2d": Geometry.identity(2, spacing=(0.5, 2.0)), "lps": lps_geometry(),
           "oblique": oblique_geometry()}.get(geometry, Geometry.identity(3))
    arr = rng_image(shape, dtype)
    p = sitk_write(arr, geo, tmp_path / f"v{ext}")
    ours, our_geo, dt = read_image(p)
    theirs, their_geo = _sitk_read(p)
    assert ours.dtype == theirs.dtype and dt == theirs.dtype.name
    np.testing.assert_array_equal(ours, theirs)
    assert our_geo == their_geo
    assert ours.flags.writeable and ours.flags.c_contiguous


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
def test_big_endian_nifti2_extensions_and_scaling(tmp_path, ext):
    """Files other writers make: big-endian, header extensions (vox_offset past 352),
    scl_slope (SimpleITK rescales: read its way). (ITK 5.4 reads no NIfTI-2.)"""
    nib = pytest.importorskip("nibabel")
    arr = rng_image((6, 7, 8), np.int16)
    affine = np.diag([-0.8, -0.9, 1.5, 1.0])
    affine[:3, 3] = [10.0, -4.0, 3.5]
    cases = {}
    img = nib.Nifti1Image(arr.T.astype(">i2"), affine)
    img.header.set_data_dtype(">i2")
    cases["big"] = img
    img = nib.Nifti1Image(arr.T.copy(), affine)
    img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"x" * 100))
    cases["extension"] = img
    img = nib.Nifti1Image(arr.T.copy(), affine)
    img.header.set_slope_inter(2.0, -3.0)
    cases["scaled"] = img
    for name, image in cases.items():
        p = tmp_path / f"{name}{ext}"
        nib.save(image, str(p))
        ours, our_geo, _ = read_image(p)
        theirs, their_geo = _sitk_read(p)
        assert ours.dtype == theirs.dtype, name
        np.testing.assert_array_equal(ours, theirs, err_msg=name)
        assert our_geo == their_geo, name


def test_integer_files_are_checked_in_full(tmp_path):
    """A corrupt byte inside an integer .nii.gz of the right length is refused (every
    member's CRC-32 is checked, whatever the voxel type)."""
    arr = rng_image((40, 100, 100), np.int16)
    write_image(arr, Geometry.identity(3), tmp_path / "ok.nii.gz")
    raw = bytearray((tmp_path / "ok.nii.gz").read_bytes())
    raw[3 * len(raw) // 4] ^= 0x5A
    sitk.ReadImage(str(tmp_path / "ok.nii.gz"))
    (tmp_path / "bad.nii.gz").write_bytes(bytes(raw))
    sitk.ReadImage(str(tmp_path / "bad.nii.gz"))  # SimpleITK reads it without a word
    with pytest.raises(CaseError, match=r"bad\.nii\.gz: corrupt gzip data"):
        read_image(tmp_path / "bad.nii.gz")


def test_4d_and_vector_images_rejected(tmp_path):
    p4 = tmp_path / "four.nii.gz"
    img4 = sitk.JoinSeries([sitk.Image([5, 4, 3], sitk.sitkFloat32)] * 2)
    assert img4.GetDimension() == 4
    sitk.WriteImage(img4, str(p4))
    with pytest.raises(CaseError, match=r"four\.nii\.gz: 4D image of size \(5, 4, 3, 2\)"):
        Case.read(p4, None)
    pv = tmp_path / "vec.mha"
    sitk.WriteImage(
        sitk.GetImageFromArray(np.zeros((3, 4, 5, 2), np.float32), isVector=True), str(pv)
    )
    with pytest.raises(CaseError, match=r"vec\.mha: vector image with 2 components"):
        read_image(pv)


def test_missing_and_unreadable(tmp_path):
    with pytest.raises(CaseError, match=r"nope\.nii\.gz: file not found"):
        read_image(tmp_path / "nope.nii.gz")
    (tmp_path / "junk.nrrd").write_bytes(b"this is not an image" * 5)
    with pytest.raises(CaseError) as err:
        read_image(tmp_path / "junk.nrrd")
    msg = str(err.value)
    assert "junk.nrrd" in msg and "cannot read" in msg and len(msg) < 500
    assert "Exception thrown in SimpleITK" not in msg
    (tmp_path / "junk.nii.gz").write_bytes(b"garbage" * 20)
    with pytest.raises(CaseError, match=r"junk\.nii\.gz"):
        read_image(tmp_path / "junk.nii.gz")
    g = Geometry.identity(2)
    img = sitk_write(np.ones((3, 3), np.float32), g, tmp_path / "ok.mha")
    with pytest.raises(CaseError, match=r"missing_label\.nii\.gz: file not found"):
        Case.read(img, tmp_path / "missing_label.nii.gz")


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.uint8])
@pytest.mark.parametrize("fraction", [0.999, 0.5, 0.05])
def test_truncated_nii_gz(tmp_path, fraction, dtype):
    # float files get a full scan; integer files the gzip-trailer check: both must catch it
    arr = rng_image((20, 30, 40), dtype)
    p = write_and_truncate(tmp_path, arr, "t.nii.gz", fraction)
    # SimpleITK alone reads a truncated .nii.gz without an error (the reason for our check)
    sitk.ReadImage(str(p))
    with pytest.raises(CaseError, match=r"t\.nii\.gz: truncated"):
        read_image(p)


def test_truncated_uncompressed_nii(tmp_path):
    arr = rng_image((20, 30, 40), np.float32)
    p = write_and_truncate(tmp_path, arr, "t.nii", 0.7)
    sitk.ReadImage(str(p))  # silently accepted by SimpleITK
    with pytest.raises(CaseError, match=r"t\.nii: truncated NIfTI"):
        read_image(p)


@pytest.mark.parametrize("name", ["t.nrrd", "t.mha"])
def test_truncated_other_formats(tmp_path, name):
    p = write_and_truncate(tmp_path, rng_image((20, 30, 40), np.float32), name, 0.5)
    with pytest.raises(CaseError, match=name.replace(".", r"\.")):
        read_image(p)


def write_and_truncate(folder: Path, arr, name: str, fraction: float) -> Path:
    p = folder / name
    write_image(arr, Geometry.identity(arr.ndim), p)
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * fraction)])
    return p


def test_gzip_check_accepts_multimember_and_rejects_corruption(tmp_path):
    arr = rng_image((4, 5, 6), np.int16)
    write_image(arr, Geometry.identity(3), tmp_path / "plain.nii")
    raw = (tmp_path / "plain.nii").read_bytes()
    multi = gzip.compress(raw[:500]) + gzip.compress(raw[500:])
    (tmp_path / "multi.nii.gz").write_bytes(multi)
    np.testing.assert_array_equal(read_image(tmp_path / "multi.nii.gz")[0], arr)
    bad = bytearray(gzip.compress(raw))
    bad[-6] ^= 0xFF  # CRC byte
    (tmp_path / "crc.nii.gz").write_bytes(bytes(bad))
    with pytest.raises(CaseError, match=r"crc\.nii\.gz"):
        read_image(tmp_path / "crc.nii.gz")


# ------------------------------------------------------------------------- writing safety


def test_write_image_refuses_overwrite(tmp_path):
    g = Geometry.identity(2)
    p = tmp_path / "a.nii.gz"
    write_image(np.zeros((2, 2), np.uint8), g, p)
    with pytest.raises(FileExistsError, match=r"a\.nii\.gz"):
        write_image(np.ones((2, 2), np.uint8), g, p)
    np.testing.assert_array_equal(read_image(p)[0], 0)
    write_image(np.ones((2, 2), np.uint8), g, p, overwrite=True)
    np.testing.assert_array_equal(read_image(p)[0], 1)
    assert no_temp_files(tmp_path)


@pytest.mark.parametrize("name", ["a.nii.gz", "a.mhd", "a.nhdr"])
def test_atomic_write_failure_leaves_nothing(tmp_path, monkeypatch, name):
    real_execute = sitk.ImageFileWriter.Execute

    def failing(self, *args, **kw):
        real_execute(self, *args, **kw)  # the temporary file(s) now exist
        assert any(".tmp" in p.name for p in tmp_path.iterdir())
        raise RuntimeError("simulated disk failure")

    monkeypatch.setattr(sitk.ImageFileWriter, "Execute", failing)
    with pytest.raises(CaseError, match="simulated disk failure"):
        write_image(np.zeros((3, 3), np.uint8), Geometry.identity(2), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", [".mhd", ".nhdr"])
def test_detached_header_points_at_final_data_file(tmp_path, ext):
    arr = rng_image((3, 4, 5))
    write_image(arr, Geometry.identity(3), tmp_path / f"x{ext}")
    assert no_temp_files(tmp_path)
    assert ".tmp" not in (tmp_path / f"x{ext}").read_text()
    np.testing.assert_array_equal(read_image(tmp_path / f"x{ext}")[0], arr)


def test_write_image_dimension_mismatch(tmp_path):
    with pytest.raises(CaseError, match=r"x\.mha.*2D"):
        write_image(np.zeros((2, 2, 2)), Geometry.identity(2), tmp_path / "x.mha")
