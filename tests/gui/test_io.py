"""Reader, writer and sample data: round trips with geometry, label detection, contract."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from napari_lesionmix._layers import GEOMETRY_KEY, looks_like_labels
from napari_lesionmix._reader import napari_get_reader, read_layer_data
from napari_lesionmix._writer import write_image_layer, write_labels_layer
from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.image_io import read_image, write_image

GEOM = Geometry((0.75, 0.8, 2.5), (-120.5, 30.25, 10.0), (1, 0, 0, 0, -1, 0, 0, 0, 1))
FORMATS = [".nii.gz", ".nrrd", ".mha"]


def _attributes(kwargs: dict) -> dict:
    return {"metadata": kwargs["metadata"], "scale": kwargs["scale"],
            "translate": kwargs["translate"], "name": kwargs["name"]}


@pytest.mark.parametrize("ext", FORMATS)
def test_image_round_trip_is_exact(tmp_path, ext):
    rng = np.random.default_rng(1)
    arr = rng.integers(-1000, 3000, (6, 9, 11)).astype(np.int16)
    write_image(arr, GEOM, tmp_path / f"ct{ext}")
    reader = napari_get_reader(str(tmp_path / f"ct{ext}"))
    [(data, kwargs, kind)] = reader(str(tmp_path / f"ct{ext}"))
    assert kind == "image" and data.dtype == np.int16
    first = Geometry.from_dict(kwargs["metadata"][GEOMETRY_KEY])
    assert first.matches(GEOM)  # NIfTI rounds geometry to float32
    assert kwargs["scale"] == first.napari_scale()
    assert np.allclose(kwargs["scale"], (2.5, 0.8, 0.75))
    assert kwargs["translate"] == (10.0, 30.25, -120.5)
    assert kwargs["metadata"]["lesionmix_dtype"] == "int16"
    out = write_image_layer(str(tmp_path / f"back{ext}"), data, _attributes(kwargs))
    data2, geom2, dtype2 = read_image(out[0])
    assert np.array_equal(data2, arr) and dtype2 == "int16"
    assert geom2 == first  # read -> write -> read: spacing, origin, direction exact


@pytest.mark.parametrize("ext", FORMATS)
def test_labels_round_trip_is_exact(tmp_path, ext):
    lab = np.zeros((5, 7, 8), np.uint8)
    lab[1:3, 2:5, 2:4] = 1
    lab[3, 5, 6] = 2
    write_image(lab, GEOM, tmp_path / f"case_seg{ext}")
    [(data, kwargs, kind)] = napari_get_reader(str(tmp_path / f"case_seg{ext}"))(
        str(tmp_path / f"case_seg{ext}"))
    assert kind == "labels"
    out = write_labels_layer(str(tmp_path / f"back{ext}"), data.astype(np.int32),
                             _attributes(kwargs))
    data2, geom2, _ = read_image(out[0])
    assert np.array_equal(data2, lab)
    assert geom2 == Geometry.from_dict(kwargs["metadata"][GEOMETRY_KEY])


def test_writer_without_metadata_uses_scale_and_translate(tmp_path):
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    out = write_image_layer(str(tmp_path / "plain.mha"), arr,
                            {"metadata": {}, "scale": (3.0, 2.0, 0.5),
                             "translate": (5.0, -1.0, 7.5)})
    data, geom, _ = read_image(out[0])
    assert np.array_equal(data, arr)
    assert geom.spacing == (0.5, 2.0, 3.0) and geom.origin == (7.5, -1.0, 5.0)
    assert geom.is_axis_aligned


def test_writer_follows_changed_scale_but_keeps_direction(tmp_path):
    write_image(np.zeros((3, 4, 5), np.float32), GEOM, tmp_path / "a.mha")
    data, kwargs, _ = read_layer_data(tmp_path / "a.mha")
    attrs = _attributes(kwargs)
    attrs["scale"] = (5.0, 0.8, 0.75)  # the user changed the z spacing in napari
    out = write_image_layer(str(tmp_path / "b.mha"), data, attrs)
    _, geom, _ = read_image(out[0])
    assert geom.spacing == (0.75, 0.8, 5.0) and geom.direction == GEOM.direction


def test_oblique_direction_opens_on_grid_with_a_warning(tmp_path):
    c, s = np.cos(0.3), np.sin(0.3)
    oblique = Geometry((1.0, 1.0, 2.0), (0.0, 0.0, 0.0), (c, -s, 0, s, c, 0, 0, 0, 1))
    arr = np.random.default_rng(0).normal(size=(4, 6, 6)).astype(np.float32)
    write_image(arr, oblique, tmp_path / "oblique.nii.gz")
    with pytest.warns(UserWarning, match="not axis-aligned"):
        [(data, kwargs, _)] = napari_get_reader(str(tmp_path / "oblique.nii.gz"))(
            str(tmp_path / "oblique.nii.gz"))
    assert np.array_equal(data, arr)  # the voxel grid, not resampled
    assert kwargs["scale"] == (2.0, 1.0, 1.0)
    assert Geometry.from_dict(kwargs["metadata"][GEOMETRY_KEY]).matches(oblique)
    out = write_image_layer(str(tmp_path / "back.nii.gz"), data, _attributes(kwargs))
    assert read_image(out[0])[1].matches(oblique)


def test_get_reader_returns_none_without_raising(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    assert napari_get_reader(str(tmp_path / "notes.txt")) is None
    assert napari_get_reader(str(tmp_path / "missing.nii.gz")) is None
    assert napari_get_reader(str(tmp_path / "empty")) is None
    assert napari_get_reader([]) is None
    assert napari_get_reader(12345) is None
    assert napari_get_reader([str(tmp_path / "notes.txt")]) is None


def test_dicom_series_folder(tmp_path):
    arr = np.random.default_rng(0).integers(0, 1000, (4, 8, 9)).astype(np.int16)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.5, 0.5, 2.0))
    folder = tmp_path / "series"
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(arr.shape[0]):
        sl = img[:, :, k]
        sl.SetMetaData("0020|0032", f"0\\0\\{2.0 * k}")
        sl.SetMetaData("0020|0013", str(k))
        sl.SetMetaData("0020|000e", "1.2.826.0.1.3680043.2.1125.1")
        sl.SetMetaData("0020|0037", "1\\0\\0\\0\\1\\0")
        sl.SetMetaData("0018|0050", "2.0")
        writer.SetFileName(str(folder / f"{k:03d}.dcm"))
        writer.Execute(sl)
    reader = napari_get_reader(str(folder))
    assert reader is not None
    [(data, kwargs, kind)] = reader(str(folder))
    assert kind == "image" and data.shape == arr.shape
    assert np.array_equal(data, arr)
    assert np.allclose(kwargs["scale"], (2.0, 0.5, 0.5))


def test_label_detection():
    assert looks_like_labels(np.array([0, 1, 2, 1], np.uint8))
    assert not looks_like_labels(np.arange(500, dtype=np.int16))
    assert looks_like_labels(np.arange(500, dtype=np.uint16), "sub01_seg.nii.gz")
    assert looks_like_labels(np.array([0.0, 1.0], np.float32), "mask.nii")  # whole numbers
    assert not looks_like_labels(np.array([0.0, 1.5], np.float32), "mask.nii")
    assert not looks_like_labels(np.array([0.0, 1.0], np.float32), "t1.nii")
    assert not looks_like_labels(np.array([-1, 0, 1], np.int8))
    # the name raises the limit, it never makes a label map of a continuous image
    assert not looks_like_labels(np.arange(5000, dtype=np.uint16), "sub01_seg.nii.gz")


@pytest.mark.parametrize("name", ["sub-01_T1w_masked.nii.gz", "T1_brainmask_applied.nii.gz",
                                  "t1_presegmentation_input.nii.gz", "t1.nii.gz"])
def test_a_label_word_inside_another_word_opens_an_image(tmp_path, name):
    rng = np.random.default_rng(0)
    arr = rng.normal(300, 80, (20, 30, 40)).clip(0).astype(np.uint16)  # thousands of values
    write_image(arr, GEOM, tmp_path / name)
    data, kwargs, kind = read_layer_data(tmp_path / name)
    assert kind == "image" and data.dtype == np.uint16


@pytest.mark.parametrize("name", ["case_seg.nii.gz", "sub-01_dseg.nii.gz", "lesion-mask1.nii.gz",
                                  "aparc+aseg.nii.gz", "case01_gt.nii.gz"])
def test_label_words_open_labels(tmp_path, name):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 200, (10, 12, 14)).astype(np.uint16)  # > 64 values: the name counts
    write_image(arr, GEOM, tmp_path / name)
    assert read_layer_data(tmp_path / name)[2] == "labels"


def test_a_float_segmentation_of_whole_numbers_opens_as_labels(tmp_path):
    arr = np.random.default_rng(0).integers(0, 3, (10, 12, 14)).astype(np.float32)
    write_image(arr, GEOM, tmp_path / "case_seg.nii.gz")
    data, kwargs, kind = read_layer_data(tmp_path / "case_seg.nii.gz")
    assert kind == "labels" and data.dtype.kind == "u"
    assert np.array_equal(data, arr.astype(np.uint8))
    write_image(arr + 0.5, GEOM, tmp_path / "prob_seg.nii.gz")
    assert read_layer_data(tmp_path / "prob_seg.nii.gz")[2] == "image"


def test_a_flipped_direction_shows_one_info_notification(tmp_path, notes):
    arr = np.zeros((6, 9, 11), np.int16)
    write_image(arr, GEOM, tmp_path / "flipped.nii.gz")  # GEOM flips y
    identity = Geometry((0.75, 0.8, 2.5), (-120.5, 30.25, 10.0), tuple(np.eye(3).ravel()))
    write_image(arr, identity, tmp_path / "plain.nii.gz")
    read_layer_data(tmp_path / "plain.nii.gz")
    assert notes == []
    data, kwargs, kind = read_layer_data(tmp_path / "flipped.nii.gz")
    assert len(notes) == 1 and notes[0][0] == "info"
    assert "flipped.nii.gz" in notes[0][1] and "voxel grid" in notes[0][1]
    assert kwargs["metadata"]["lesionmix_note"] == notes[0][1]


@pytest.mark.parametrize("name, spacing_zyx", [("brain_mr", (2.0, 2.0, 2.0)),
                                                ("liver_ct", (3.0, 1.5, 1.5))])
def test_sample_data_layers_carry_geometry(name, spacing_zyx):
    from napari_lesionmix._sample_data import sample_layers
    from napari_lesionmix.sample_data import sample_paths

    layers = sample_layers(name)
    assert [kind for _, _, kind in layers] == ["image", "labels"]
    (img, ikw, _), (lab, lkw, _) = layers
    assert img.shape == lab.shape and lab.dtype.kind == "u"
    assert np.allclose(ikw["scale"], spacing_zyx) and lkw["scale"] == ikw["scale"]
    _, geom, _ = read_image(sample_paths(name)[0][1])
    assert lkw["translate"] == geom.napari_translate()
    assert (lab > 0).any()
