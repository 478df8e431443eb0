"""Reader, writer and sample data: layers in physical space (napari's affine), round trips
that give every file its exact geometry and axis order back, label detection, contract."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from napari_lesionmix._layers import GEOMETRY_KEY, geometry_from_attributes, looks_like_labels
from napari_lesionmix._reader import napari_get_reader, read_layer_data
from napari_lesionmix._writer import write_image_layer, write_labels_layer
from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.image_io import read_image, write_image

GEOM = Geometry((0.75, 0.8, 2.5), (-120.5, 30.25, 10.0), (1, 0, 0, 0, -1, 0, 0, 0, 1))
FORMATS = [".nii.gz", ".nrrd", ".mha"]


def _attributes(kwargs: dict) -> dict:
    return {"metadata": kwargs["metadata"], "scale": kwargs["scale"],
            "affine": kwargs["affine"], "name": kwargs["name"]}


def _world(kwargs: dict, index_zyx) -> np.ndarray:
    """The world point of a voxel of a layer made with ``kwargs`` (napari's transform)."""
    from napari.layers import Image

    layer = Image(np.zeros((2,) * len(kwargs["scale"])), **kwargs)
    return np.asarray(layer.data_to_world(np.asarray(index_zyx, float)))


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
    assert np.allclose(kwargs["scale"], (2.5, 0.8, 0.75)) and kwargs["units"] == ("mm",) * 3
    # world = physical LPS mm in z, y, x order, the flipped y included
    for idx in ((0, 0, 0), (3, 5, 7)):
        np.testing.assert_allclose(_world(kwargs, idx), first.index_to_physical(idx)[::-1])
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


def test_writer_without_metadata_uses_the_transform(tmp_path):
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
    assert np.allclose(geom.spacing, (0.75, 0.8, 5.0)) and geom.direction == GEOM.direction
    assert np.allclose(geom.origin, GEOM.origin)


def test_oblique_direction_opens_in_physical_space_without_a_notice(tmp_path, notes):
    c, s = np.cos(0.3), np.sin(0.3)
    oblique = Geometry((1.0, 1.0, 2.0), (4.0, -3.0, 7.0), (c, -s, 0, s, c, 0, 0, 0, 1))
    arr = np.random.default_rng(0).normal(size=(4, 6, 6)).astype(np.float32)
    write_image(arr, oblique, tmp_path / "oblique.mha")
    [(data, kwargs, _)] = napari_get_reader(str(tmp_path / "oblique.mha"))(
        str(tmp_path / "oblique.mha"))
    assert notes == []  # nothing the user must act on; the Case tab shows the note
    assert "oblique" in kwargs["metadata"]["lesionmix_note"]
    assert np.array_equal(data, arr)  # nothing resampled
    stored = Geometry.from_dict(kwargs["metadata"][GEOMETRY_KEY])
    for idx in ((0, 0, 0), (3, 5, 2)):
        np.testing.assert_allclose(_world(kwargs, idx), stored.index_to_physical(idx)[::-1],
                                   atol=1e-9)
    out = write_image_layer(str(tmp_path / "back.mha"), data, _attributes(kwargs))
    back, geom, _ = read_image(out[0])
    assert geom == stored and np.array_equal(back, arr)  # MetaImage keeps it exactly


def test_a_permuted_file_is_shown_upright_and_written_back_as_it_was(tmp_path):
    # a sagittal acquisition stored x-first: index i runs along y, j along z, k along x
    permuted = Geometry((0.9, 1.1, 1.3), (12.0, -40.0, 5.0), (0, 0, 1, 1, 0, 0, 0, 1, 0))
    arr = np.random.default_rng(1).integers(0, 1000, (5, 6, 7)).astype(np.int16)
    write_image(arr, permuted, tmp_path / "sag.mha")
    data, kwargs, _ = read_layer_data(tmp_path / "sag.mha")
    assert data.shape == (6, 7, 5)  # array axes now run along world z, y, x
    shown = geometry_from_attributes(_attributes(kwargs), 3)
    assert shown.is_axis_aligned and np.allclose(shown.direction_matrix, np.eye(3))
    # the same voxel in the file and in the layer: the same world point
    idx_file = np.array([2, 3, 4])
    idx_shown = idx_file[[1, 2, 0]]
    assert data[tuple(idx_shown)] == arr[tuple(idx_file)]
    np.testing.assert_allclose(_world(kwargs, idx_shown),
                               permuted.index_to_physical(idx_file)[::-1])
    out = write_image_layer(str(tmp_path / "back.mha"), data, _attributes(kwargs))
    back, geom, _ = read_image(out[0])
    assert geom == permuted and np.array_equal(back, arr)


def test_files_on_different_grids_line_up(tmp_path):
    """One physical object in two files (RAS-stored 1 mm, LPS-stored 2 mm): the same world
    point shows the same part of the object in both layers."""
    rng = np.random.default_rng(2)
    fine = Geometry((1.0, 1.0, 1.0), (40.0, 50.0, -10.0), (-1, 0, 0, 0, -1, 0, 0, 0, 1))
    coarse = Geometry((2.0, 2.0, 2.0), (-10.0, -20.0, -10.0), tuple(np.eye(3).ravel()))

    def blob(geometry, shape):
        idx = np.indices(shape).reshape(3, -1).T
        xyz = geometry.index_to_physical(idx)
        centre = np.array([15.0, 20.0, 0.0])
        return (np.linalg.norm(xyz - centre, axis=1) < 6).reshape(shape).astype(np.uint8)

    write_image(blob(fine, (20, 60, 60)), fine, tmp_path / "fine_seg.nii.gz")
    write_image(blob(coarse, (10, 30, 30)), coarse, tmp_path / "coarse_seg.nii.gz")
    layers = []
    for name in ("fine_seg", "coarse_seg"):
        from napari.layers import Labels

        data, kwargs, _ = read_layer_data(tmp_path / f"{name}.nii.gz")
        layers.append(Labels(data, **kwargs))
    world_centre = np.array([0.0, 20.0, 15.0])  # z, y, x
    for layer in layers:
        idx = np.rint(layer.world_to_data(world_centre)).astype(int)
        assert layer.data[tuple(idx)] == 1
        off = np.rint(layer.world_to_data(world_centre + [0, 0, 9.0])).astype(int)
        assert layer.data[tuple(off)] == 0
    del rng


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


def test_an_ordinary_flipped_nifti_opens_without_a_notice(tmp_path, notes):
    write_image(np.zeros((6, 9, 11), np.int16), GEOM, tmp_path / "flipped.nii.gz")
    data, kwargs, kind = read_layer_data(tmp_path / "flipped.nii.gz")
    assert notes == [] and "lesionmix_note" not in kwargs["metadata"]


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
    np.testing.assert_allclose(lkw["affine"][:3, 3], geom.origin[::-1])
    np.testing.assert_allclose(_world(lkw, (1, 2, 3)), geom.index_to_physical((1, 2, 3))[::-1])
    assert (lab > 0).any()
