"""Tests for napari_lesionmix.core.case: Geometry, Case, read_image, write_image."""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from napari_lesionmix.core import case as case_mod
from napari_lesionmix.core.case import (
    Case,
    CaseError,
    Geometry,
    label_dtype,
    read_image,
    write_image,
)

FORMATS = [".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd"]


# ------------------------------------------------------------------------- fixtures


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def oblique_geometry(ndim: int = 3) -> Geometry:
    """Oblique, anisotropic, LPS-flipped (non-RAS) geometry with awkward float64 values."""
    if ndim == 3:
        d = _rotation(0.2, -0.15, 0.3) @ np.diag([-1.0, -1.0, 1.0])
        return Geometry(
            (0.7123456789, 0.93, 2.5000001), (-123.456789012, 45.6789, -7.000001), tuple(d.ravel())
        )
    t = 0.3
    d = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ np.diag([-1.0, 1.0])
    return Geometry((0.7123456789, 1.93), (-123.456789012, 45.6789), tuple(d.ravel()))


def lps_geometry() -> Geometry:
    """Axis-aligned, flipped x and y (LPS in a RAS world), anisotropic."""
    return Geometry((0.75, 0.75, 3.0), (100.25, -50.5, 12.0), (-1, 0, 0, 0, -1, 0, 0, 0, 1))


def rng_image(shape, dtype=np.int16, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return (rng.normal(size=shape) * 100).astype(dtype)
    return rng.integers(-1000, 1000, size=shape).astype(dtype)


def rng_labels(shape, seed=1, n=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=shape).astype(np.uint8)


def sitk_write(arr, geom: Geometry, path, **kw) -> Path:
    """Write with plain SimpleITK (independent of write_image)."""
    img = sitk.GetImageFromArray(arr, isVector=kw.pop("is_vector", False))
    img.SetSpacing(geom.spacing)
    img.SetOrigin(geom.origin)
    img.SetDirection(geom.direction)
    sitk.WriteImage(img, str(path), **kw)
    return Path(path)


def assert_geometry_close(a: Geometry, b: Geometry, ext: str) -> None:
    """Exact for MetaImage, ~1 ulp for NRRD, float32 precision for NIfTI."""
    if ext in (".mha", ".mhd"):
        assert a == b
    elif ext in (".nrrd", ".nhdr"):
        assert a.origin == b.origin
        np.testing.assert_allclose(a.spacing, b.spacing, rtol=1e-15, atol=0)
        np.testing.assert_allclose(a.direction, b.direction, rtol=0, atol=1e-15)
    else:
        np.testing.assert_allclose(a.spacing, b.spacing, rtol=1e-7, atol=0)
        np.testing.assert_allclose(a.origin, b.origin, rtol=1e-7, atol=1e-7)
        np.testing.assert_allclose(a.direction, b.direction, rtol=0, atol=1e-6)


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp" in p.name]


# ------------------------------------------------------------------------- Geometry


def test_geometry_basic_properties():
    g = Geometry((0.5, 1.0, 3.0), (1.0, 2.0, 3.0), tuple(np.eye(3).ravel()))
    assert g.ndim == 3
    np.testing.assert_array_equal(g.spacing_zyx, [3.0, 1.0, 0.5])
    assert g.voxel_volume == pytest.approx(1.5)
    assert g.napari_scale() == (3.0, 1.0, 0.5)
    assert g.napari_translate() == (3.0, 2.0, 1.0)
    assert g.is_axis_aligned
    g2 = Geometry.identity(2)
    assert g2.ndim == 2 and g2.spacing == (1.0, 1.0) and g2.direction == (1.0, 0.0, 0.0, 1.0)
    assert "spacing (0.5, 1, 3)" in g.describe()


def test_geometry_rejects_bad_values():
    with pytest.raises(ValueError, match="spacing"):
        Geometry((0.0, 1.0), (0, 0), (1, 0, 0, 1))
    with pytest.raises(ValueError, match="origin"):
        Geometry((1.0, 1.0), (0, 0, 0), (1, 0, 0, 1))
    with pytest.raises(ValueError, match="direction"):
        Geometry((1.0, 1.0), (0, 0), (1, 0, 0))
    with pytest.raises(ValueError, match="singular"):
        Geometry((1.0, 1.0), (0, 0), (1, 0, 1, 0))


@pytest.mark.parametrize(
    "direction, aligned",
    [
        (np.eye(3), True),
        (np.diag([-1.0, -1.0, 1.0]), True),
        (np.array([[0, 0, 1], [-1, 0, 0], [0, 1, 0]]), True),
        (np.eye(3) + np.diag([1e-7, -1e-7, 0]), True),
        (_rotation(0.01, 0, 0), False),
        (_rotation(0.2, -0.15, 0.3), False),
    ],
)
def test_is_axis_aligned(direction, aligned):
    g = Geometry((1, 1, 1), (0, 0, 0), tuple(np.asarray(direction, float).ravel()))
    assert g.is_axis_aligned is aligned


def test_matches_and_difference():
    g = oblique_geometry()
    assert g.matches(g)
    near = Geometry(tuple(np.array(g.spacing) * (1 + 1e-7)), g.origin, g.direction)
    assert g.matches(near)
    far = Geometry((0.7123456789, 0.93, 2.6), g.origin, g.direction)
    assert not g.matches(far)
    assert "spacing" in g.difference(far) and "2.6" in g.difference(far)
    moved = Geometry(g.spacing, (0.0, 0.0, 0.0), g.direction)
    assert "origin" in g.difference(moved)
    turned = Geometry(g.spacing, g.origin, tuple(np.eye(3).ravel()))
    assert "direction" in g.difference(turned)
    assert "dimension" in g.difference(Geometry.identity(2))


def test_to_dict_from_dict_is_exact_through_json():
    g = oblique_geometry()
    back = Geometry.from_dict(json.loads(json.dumps(g.to_dict())))
    assert back == g
    with pytest.raises(ValueError, match="origin"):
        Geometry.from_dict({"spacing": [1, 1], "direction": [1, 0, 0, 1]})


@pytest.mark.parametrize("ndim", [2, 3])
def test_index_to_physical_matches_simpleitk(ndim):
    g = oblique_geometry(ndim)
    img = sitk.Image([4] * ndim, sitk.sitkUInt8)
    g.apply_to(img)
    assert Geometry.from_sitk(img) == g
    rng = np.random.default_rng(3)
    idx_zyx = rng.uniform(-5, 20, size=(50, ndim))
    ours = g.index_to_physical(idx_zyx)
    ref = np.array(
        [img.TransformContinuousIndexToPhysicalPoint(tuple(map(float, i[::-1]))) for i in idx_zyx]
    )
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    back = g.physical_to_index(ours)
    np.testing.assert_allclose(back, idx_zyx, rtol=0, atol=1e-9)
    ref_idx = np.array(
        [img.TransformPhysicalPointToContinuousIndex(tuple(map(float, p))) for p in ref]
    )
    np.testing.assert_allclose(back, ref_idx[:, ::-1], rtol=0, atol=1e-9)
    # broadcasting over leading axes
    assert g.index_to_physical(idx_zyx.reshape(5, 10, ndim)).shape == (5, 10, ndim)
    with pytest.raises(ValueError):
        g.index_to_physical(np.zeros((3, ndim + 1)))


def test_apply_to_checks_dimension():
    with pytest.raises(ValueError, match="2D"):
        Geometry.identity(3).apply_to(sitk.Image([3, 3], sitk.sitkUInt8))


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


@pytest.mark.parametrize("ext", [".nii.gz", ".nrrd", ".mha"])
def test_case_round_trip_multichannel(tmp_path, ext):
    g = oblique_geometry(3)
    shape = (4, 5, 6)
    flair = rng_image(shape, np.int16, seed=1)
    t1 = rng_image(shape, np.float32, seed=2)
    labels = rng_labels(shape)
    paths = [
        sitk_write(flair, g, tmp_path / f"c_0000{ext}"),
        sitk_write(t1, g, tmp_path / f"c_0001{ext}"),
    ]
    lpath = sitk_write(labels, g, tmp_path / f"lab{ext}")
    case = Case.read(paths, lpath)
    assert case.channels.dtype == np.float32 and case.channels.shape == (2, *shape)
    assert case.image_dtypes == ["int16", "float32"]
    assert case.labels.dtype == np.uint8
    assert case.n_channels == 2 and case.ndim == 3 and case.spatial_shape == shape
    assert case.name == "lab"
    assert case.image_paths == [str(p) for p in paths] and case.label_path == str(lpath)

    out = tmp_path / "out"
    outs = [out / f"o_0000{ext}", out / f"o_0001{ext}"]
    case.write(outs, out / f"ol{ext}")
    again = Case.read(outs, out / f"ol{ext}")
    assert again.image_dtypes == ["int16", "float32"]
    np.testing.assert_array_equal(read_image(outs[0])[0], flair)
    assert read_image(outs[0])[0].dtype == np.int16
    np.testing.assert_array_equal(read_image(outs[1])[0], t1)
    np.testing.assert_array_equal(again.labels, labels)
    assert_geometry_close(again.geometry, case.geometry, ext)
    assert no_temp_files(out)


def test_case_name_defaults(tmp_path):
    g = Geometry.identity(2)
    p = sitk_write(np.ones((3, 3), np.float32), g, tmp_path / "BraTS_001_0000.nii.gz")
    assert Case.read(p, None).name == "BraTS_001"
    assert Case.read(p, None, name="x").name == "x"


def test_write_back_rounds_and_clips_to_source_dtype(tmp_path):
    g = Geometry.identity(2)
    p = sitk_write(np.array([[0, 1], [2, 3]], np.int16), g, tmp_path / "a.mha")
    case = Case.read(p, None)
    case.channels[0] = [[1.4, 1.6], [1e6, -1e6]]
    case.write([tmp_path / "b.mha"], None)
    arr, _, dt = read_image(tmp_path / "b.mha")
    assert dt == "int16"
    np.testing.assert_array_equal(arr, [[1, 2], [32767, -32768]])


@pytest.mark.parametrize(
    "max_label, dtype", [(1, np.uint8), (255, np.uint8), (300, np.uint16), (70000, np.uint32)]
)
def test_labels_written_as_smallest_unsigned(tmp_path, max_label, dtype):
    assert label_dtype(max_label) == dtype
    labels = np.zeros((3, 4), np.int32)
    labels[1, 2] = max_label
    case = Case.from_arrays(np.ones((3, 4), np.float32), labels)
    assert case.labels.dtype == dtype
    case.write(None, tmp_path / "l.nii.gz")
    arr, _, dt = read_image(tmp_path / "l.nii.gz")
    assert dt == np.dtype(dtype).name
    np.testing.assert_array_equal(arr, labels)


def test_float_labels_with_whole_values_are_converted(tmp_path):
    g = Geometry.identity(3)
    img = sitk_write(np.ones((2, 3, 4), np.float32), g, tmp_path / "i.nii.gz")
    lab = np.zeros((2, 3, 4), np.float32)
    lab[0, 1, 2] = 2.0
    lpath = sitk_write(lab, g, tmp_path / "l.nii.gz")
    case = Case.read(img, lpath)
    assert case.labels.dtype == np.uint8
    assert case.label_values() == {0, 2}


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


def test_2d_file_is_2d_and_one_slice_3d_stays_3d(tmp_path):
    p2 = sitk_write(rng_image((6, 7)), oblique_geometry(2), tmp_path / "a.nii.gz")
    c2 = Case.read(p2, None)
    assert c2.ndim == 2 and c2.geometry.ndim == 2 and c2.spatial_shape == (6, 7)
    p3 = sitk_write(rng_image((1, 6, 7)), lps_geometry(), tmp_path / "b.nii.gz")
    c3 = Case.read(p3, None)
    assert c3.ndim == 3 and c3.spatial_shape == (1, 6, 7)
    assert c3.geometry == lps_geometry()


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


@pytest.fixture
def grid(tmp_path):
    g = oblique_geometry(3)
    shape = (4, 5, 6)
    img = sitk_write(rng_image(shape), g, tmp_path / "img.nii.gz")
    return tmp_path, g, shape, img


def test_label_shape_mismatch_names_both(grid):
    tmp, g, shape, img = grid
    lab = sitk_write(np.zeros((4, 5, 7), np.uint8), g, tmp / "lab.nii.gz")
    with pytest.raises(CaseError) as err:
        Case.read(img, lab)
    msg = str(err.value)
    assert "img.nii.gz" in msg and "lab.nii.gz" in msg and "(4, 5, 6)" in msg and "(4, 5, 7)" in msg


@pytest.mark.parametrize("what", ["spacing", "origin", "direction"])
def test_label_geometry_mismatch_names_both(grid, what):
    tmp, g, shape, img = grid
    d = g.to_dict()
    if what == "spacing":
        d["spacing"][2] = 3.0
    elif what == "origin":
        d["origin"][0] += 1.0
    else:
        d["direction"] = list(np.eye(3).ravel())
    lab = sitk_write(np.zeros(shape, np.uint8), Geometry.from_dict(d), tmp / "lab.nii.gz")
    with pytest.raises(CaseError) as err:
        Case.read(img, lab)
    msg = str(err.value)
    assert "img.nii.gz" in msg and "lab.nii.gz" in msg and what in msg


def test_geometry_within_tolerance_is_accepted(grid):
    tmp, g, shape, img = grid
    lab = sitk_write(np.zeros(shape, np.uint8), g, tmp / "lab.nrrd")  # float64 vs float32 file
    Case.read(img, lab)


def test_channel_mismatch(grid):
    tmp, g, shape, img = grid
    other = sitk_write(rng_image((4, 5, 5)), g, tmp / "t1.nii.gz")
    with pytest.raises(CaseError, match=r"img\.nii\.gz.*t1\.nii\.gz.*shape"):
        Case.read([img, other], None)
    moved = Geometry(g.spacing, (0.0, 0.0, 0.0), g.direction)
    other2 = sitk_write(rng_image(shape), moved, tmp / "t2.nii.gz")
    with pytest.raises(CaseError, match=r"t2\.nii\.gz.*origin"):
        Case.read([img, other2], None)


def test_label_not_whole(grid):
    tmp, g, shape, img = grid
    lab = np.zeros(shape, np.float32)
    lab[0, 0, :3] = 0.5
    lpath = sitk_write(lab, g, tmp / "lab.nii.gz")
    with pytest.raises(CaseError) as err:
        Case.read(img, lpath)
    msg = str(err.value)
    assert "lab.nii.gz" in msg and "3 label voxel(s)" in msg and "0.5" in msg


def test_label_negative(grid):
    tmp, g, shape, img = grid
    lab = np.zeros(shape, np.int16)
    lab[1, 1, 1] = -2
    lpath = sitk_write(lab, g, tmp / "lab.nii.gz")
    with pytest.raises(CaseError, match=r"lab\.nii\.gz.*1 label voxel\(s\) are negative"):
        Case.read(img, lpath)


def test_label_not_allowed(grid):
    tmp, g, shape, img = grid
    lab = np.zeros(shape, np.uint8)
    lab[0, 0, 0] = 1
    lab[0, 0, 1] = 7
    lab[0, 0, 2] = 9
    lpath = sitk_write(lab, g, tmp / "lab.nii.gz")
    Case.read(img, lpath)
    with pytest.raises(CaseError) as err:
        Case.read(img, lpath, allowed_labels={0, 1, 2})
    msg = str(err.value)
    assert "lab.nii.gz" in msg and "[7, 9]" in msg


def test_nan_in_image(tmp_path):
    g = Geometry.identity(3)
    arr = np.ones((3, 4, 5), np.float32)
    arr[1, 2, 3] = np.nan
    arr[2, 0, 0] = np.inf
    p = sitk_write(arr, g, tmp_path / "nan.nii.gz")
    with pytest.raises(CaseError) as err:
        Case.read(p, None)
    msg = str(err.value)
    assert "nan.nii.gz" in msg and "2 voxel(s)" in msg
    assert "(1, 2, 3)" in msg and "x, y, z = (3, 2, 1)" in msg


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_nifti_scan_any_chunking(tmp_path, dtype):
    arr = rng_image((5, 6, 7), dtype)
    if arr.dtype.kind == "f":
        arr.reshape(-1)[[3, 100, 209]] = [np.nan, -np.inf, np.nan]
    p = sitk_write(arr, Geometry.identity(3), tmp_path / "x.nii")
    raw = p.read_bytes()
    rng = np.random.default_rng(0)
    for _ in range(5):
        scan = case_mod._NiftiScan()
        pos = 0
        while pos < len(raw):
            step = int(rng.integers(1, 400))
            scan.feed(raw[pos : pos + step])
            pos += step
        scan.finish()
        idx, vals = scan.nonfinite()
        assert scan.total == len(raw) and scan.header.need == len(raw)
        expected = [3, 100, 209] if arr.dtype.kind == "f" else []
        np.testing.assert_array_equal(idx, expected)


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


def test_expect_ndim(tmp_path):
    p = sitk_write(np.zeros((6, 7), np.float32), Geometry.identity(2), tmp_path / "flat.nrrd")
    Case.read(p, None, expect_ndim=2)
    with pytest.raises(CaseError, match=r"flat\.nrrd: expected a 3D image, got 2D"):
        Case.read(p, None, expect_ndim=3)


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


@pytest.mark.parametrize("fraction", [0.999, 0.5, 0.05])
def test_truncated_nii_gz(tmp_path, fraction):
    arr = rng_image((20, 30, 40), np.float32)
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


def test_case_write_refuses_before_writing_anything(tmp_path):
    case = Case.from_arrays(np.ones((2, 3, 3), np.float32), np.zeros((3, 3), np.uint8))
    (tmp_path / "lab.nii.gz").write_bytes(b"existing")
    outs = [tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"]
    with pytest.raises(FileExistsError, match=r"lab\.nii\.gz"):
        case.write(outs, tmp_path / "lab.nii.gz")
    assert not outs[0].exists() and not outs[1].exists()
    assert (tmp_path / "lab.nii.gz").read_bytes() == b"existing"
    with pytest.raises(CaseError, match="2 channel"):
        case.write(outs[:1], None)
    case.write(outs, tmp_path / "lab.nii.gz", overwrite=True)
    assert Case.read(outs, tmp_path / "lab.nii.gz").n_channels == 2


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


# ------------------------------------------------------------------------- Case API


def test_from_arrays_defaults_and_validation():
    case = Case.from_arrays(np.arange(12, dtype=np.int16).reshape(3, 4), np.zeros((3, 4), int))
    assert case.channels.shape == (1, 3, 4) and case.channels.dtype == np.float32
    assert case.image_dtypes == ["int16"] and case.channel_names == ["0"]
    assert case.geometry == Geometry.identity(2)
    assert case.labels.dtype == np.uint8
    # without labels, an array of the geometry's dimension is one channel
    assert Case.from_arrays(np.zeros((2, 3, 4))).channels.shape == (1, 2, 3, 4)
    two = Case.from_arrays(np.zeros((2, 3, 4)), geometry=Geometry.identity(2))
    assert two.n_channels == 2 and two.labels.shape == (3, 4)
    with pytest.raises(CaseError, match="'bad'.*NaN"):
        Case.from_arrays(np.full((3, 4), np.nan), np.zeros((3, 4), int), name="bad")
    with pytest.raises(CaseError, match="shape"):
        Case.from_arrays(np.zeros((3, 4)), np.zeros((3, 5), int))
    with pytest.raises(CaseError, match="negative"):
        Case.from_arrays(np.zeros((3, 4)), -np.ones((3, 4), int))
    with pytest.raises(CaseError, match="geometry is 3D"):
        Case.from_arrays(np.zeros((3, 4)), np.zeros((3, 4), int), geometry=Geometry.identity(3))


def test_empty_case_is_valid_and_copy_is_independent():
    case = Case.from_arrays(np.ones((2, 3, 4, 5)), np.zeros((3, 4, 5), np.uint8))
    assert case.label_values() == {0}
    other = case.copy()
    other.channels[0, 0, 0, 0] = 5
    other.labels[0, 0, 0] = 1
    assert case.channels[0, 0, 0, 0] == 1 and case.labels[0, 0, 0] == 0
    assert other.label_values() == {0, 1}


def test_foreground_and_intensity_stats():
    ch = np.zeros((2, 4, 4), np.float32)
    ch[0, :2] = [[1, 2, 3, 4], [5, 6, 7, 8]]
    ch[1, :2] = 10.0  # constant over the foreground: std floored
    case = Case.from_arrays(ch, np.zeros((4, 4), np.uint8))
    fg = case.foreground()
    assert fg.sum() == 8
    stats = case.intensity_stats()
    assert stats.shape == (2, 2) and stats.dtype == np.float64
    np.testing.assert_allclose(stats[0], [4.5, np.std(np.arange(1, 9))])
    assert stats[1, 0] == 10.0 and stats[1, 1] == pytest.approx(1e-6 * 10 + 1e-6)
    # placement replaces the non-zero rule
    placement = np.zeros((4, 4), bool)
    placement[3, 3] = True
    case2 = Case.from_arrays(ch, np.zeros((4, 4), np.uint8), placement=placement)
    np.testing.assert_array_equal(case2.foreground(), placement)
    np.testing.assert_allclose(case2.intensity_stats()[:, 0], [0.0, 0.0])
    # an empty region gives stats over the whole image
    whole = case.intensity_stats(np.zeros((4, 4), bool))
    np.testing.assert_allclose(whole[0, 0], ch[0].mean())
    assert np.all(whole[:, 1] > 0)


def test_placement_path(tmp_path):
    g = lps_geometry()
    shape = (3, 4, 5)
    img = sitk_write(rng_image(shape), g, tmp_path / "i.nrrd")
    pl = np.zeros(shape, np.uint8)
    pl[1] = 3
    ppath = sitk_write(pl, g, tmp_path / "p.nrrd")
    case = Case.read(img, None, placement_path=ppath)
    assert case.placement.dtype == bool and case.placement.sum() == 20
    np.testing.assert_array_equal(case.foreground(), pl != 0)
    bad = sitk_write(pl[:, :3], g, tmp_path / "p_small.nrrd")
    with pytest.raises(CaseError, match=r"p_small\.nrrd"):
        Case.read(img, None, placement_path=bad)


def test_case_module_has_no_gui_imports():
    src = Path(case_mod.__file__).read_text(encoding="utf-8")
    assert "import napari\n" not in src and "from napari " not in src and "qtpy" not in src
