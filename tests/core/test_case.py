"""Tests for napari_lesionmix.core.case: Case (reading, validation, writing, API)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_lesionmix.core import case as case_mod
from napari_lesionmix.core import errors, geometry, image_io, nifti_check, validate
from napari_lesionmix.core.case import Case
from napari_lesionmix.core.errors import CaseError
from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.image_io import label_dtype, read_image
from tests.core.image_helpers import (
    assert_geometry_close,
    lps_geometry,
    no_temp_files,
    oblique_geometry,
    rng_image,
    rng_labels,
    sitk_write,
)

# ------------------------------------------------------------------------- round trips


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


def test_2d_file_is_2d_and_one_slice_3d_stays_3d(tmp_path):
    p2 = sitk_write(rng_image((6, 7)), oblique_geometry(2), tmp_path / "a.nii.gz")
    c2 = Case.read(p2, None)
    assert c2.ndim == 2 and c2.geometry.ndim == 2 and c2.spatial_shape == (6, 7)
    p3 = sitk_write(rng_image((1, 6, 7)), lps_geometry(), tmp_path / "b.nii.gz")
    c3 = Case.read(p3, None)
    assert c3.ndim == 3 and c3.spatial_shape == (1, 6, 7)
    assert c3.geometry == lps_geometry()


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


def test_expect_ndim(tmp_path):
    p = sitk_write(np.zeros((6, 7), np.float32), Geometry.identity(2), tmp_path / "flat.nrrd")
    Case.read(p, None, expect_ndim=2)
    with pytest.raises(CaseError, match=r"flat\.nrrd: expected a 3D image, got 2D"):
        Case.read(p, None, expect_ndim=3)


# ------------------------------------------------------------------------- writing safety


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
    for mod in (case_mod, errors, geometry, image_io, nifti_check, validate):
        src = Path(mod.__file__).read_text(encoding="utf-8")
        assert "import napari\n" not in src and "from napari " not in src and "qtpy" not in src
