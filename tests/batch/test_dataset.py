"""Reading input datasets: both layouts, the pairing rule, and every kind of bad case."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from napari_lesionmix.batch.dataset import DatasetError, open_dataset, validate
from tests.batch.helpers import make_nnunet


def test_nnunet_listing(nnunet_ds):
    ds = open_dataset(nnunet_ds)
    assert ds.layout == "nnunet"
    assert [c.name for c in ds.cases] == ["sub00", "sub01", "sub02", "sub03"]
    assert ds.n_channels == 2 and ds.file_ending == ".nii.gz"
    c = ds.cases[1]
    assert [p.name for p in c.image_paths] == ["sub01_0000.nii.gz", "sub01_0001.nii.gz"]
    assert c.label_path.name == "sub01.nii.gz" and c.image_paths[0].is_absolute()
    good, bad = validate(ds)
    assert len(good) == 4 and not bad


def test_paired_folder_pairing_rule(tmp_path, nnunet_ds):
    root = tmp_path / "paired"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    # two-channel case with the _XXXX rule, and a .nrrd label with a .nii.gz image
    for k in range(2):
        shutil.copy(nnunet_ds / "imagesTr" / f"sub00_{k:04d}.nii.gz",
                    root / "images" / f"a_{k:04d}.nii.gz")
        shutil.copy(nnunet_ds / "imagesTr" / f"sub01_{k:04d}.nii.gz",
                    root / "images" / f"b_{k:04d}.nii.gz")
    shutil.copy(nnunet_ds / "labelsTr" / "sub00.nii.gz", root / "labels" / "a.nii.gz")
    img = sitk.ReadImage(str(nnunet_ds / "labelsTr" / "sub01.nii.gz"))
    sitk.WriteImage(img, str(root / "labels" / "b.nrrd"))
    ds = open_dataset(root)
    assert ds.layout == "paired" and ds.n_channels == 2
    assert [c.name for c in ds.cases] == ["a", "b"]
    assert ds.cases[1].label_path.name == "b.nrrd"
    good, bad = validate(ds)
    assert not bad and len(good) == 2
    assert ds.labels == {"background": 0, "label_1": 1}


def test_paired_single_channel(tmp_path, nnunet_ds):
    root = tmp_path / "paired"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    shutil.copy(nnunet_ds / "imagesTr" / "sub00_0000.nii.gz", root / "images" / "x.nii.gz")
    shutil.copy(nnunet_ds / "labelsTr" / "sub00.nii.gz", root / "labels" / "x.nii.gz")
    ds = open_dataset(root)
    assert ds.n_channels == 1 and [p.name for p in ds.cases[0].image_paths] == ["x.nii.gz"]
    assert validate(ds)[1] == []


def test_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="not a dataset"):
        open_dataset(tmp_path)
    with pytest.raises(DatasetError, match="no such folder"):
        open_dataset(tmp_path / "nope")


def test_dataset_json_problems(nnunet_ds):
    meta = json.loads((nnunet_ds / "dataset.json").read_text())
    del meta["labels"]
    (nnunet_ds / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="labels"):
        open_dataset(nnunet_ds)
    (nnunet_ds / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        open_dataset(nnunet_ds)


def _break(ds, how):
    """Damage case sub01 of an nnU-Net dataset in one way; return text the report must name."""
    lab = ds / "labelsTr" / "sub01.nii.gz"
    img = ds / "imagesTr" / "sub01_0001.nii.gz"
    if how == "missing label":
        lab.unlink()
        return "missing label file"
    if how == "missing channel":
        img.unlink()
        return "missing image file"
    if how == "shape":
        a = sitk.ReadImage(str(img))
        small = sitk.RegionOfInterest(a, [a.GetSize()[0] - 1, a.GetSize()[1], a.GetSize()[2]])
        sitk.WriteImage(small, str(img))
        return "different shapes"
    if how == "geometry":
        a = sitk.ReadImage(str(lab))
        a.SetOrigin((100.0, 0.0, 0.0))
        sitk.WriteImage(a, str(lab))
        return "different geometry"
    if how == "label value":
        a = sitk.ReadImage(str(lab))
        arr = sitk.GetArrayFromImage(a)
        arr[0, 0, 0] = 7
        b = sitk.GetImageFromArray(arr)
        b.CopyInformation(a)
        sitk.WriteImage(b, str(lab))
        return "[7]"
    if how == "truncated":
        data = img.read_bytes()
        img.write_bytes(data[: len(data) // 2])
        return "truncated"
    if how == "garbage":
        img.write_bytes(b"this is not an image" * 10)
        return "sub01_0001.nii.gz"
    if how == "corrupt gzip":
        raw = bytearray(gzip.decompress(img.read_bytes()))
        data = bytearray(gzip.compress(bytes(raw)))
        data[-6] ^= 0xFF  # CRC/length trailer damaged
        img.write_bytes(bytes(data))
        return "sub01_0001.nii.gz"
    raise AssertionError(how)


BREAKS = ["missing label", "missing channel", "shape", "geometry", "label value", "truncated",
          "garbage", "corrupt gzip"]


@pytest.mark.parametrize("how", BREAKS)
def test_bad_case_is_reported_by_name_and_file(nnunet_ds, how):
    expect = _break(nnunet_ds, how)
    ds = open_dataset(nnunet_ds)
    good, bad = validate(ds)
    assert [b.name for b in bad] == ["sub01"], bad
    assert expect in bad[0].problem
    assert "sub01" in bad[0].problem  # the file is named
    assert [s.name for s in good] == ["sub00", "sub02", "sub03"]


def test_mixed_dimensions_reported(tmp_path):
    ds3 = make_nnunet(tmp_path / "d", n_cases=2)
    a = np.zeros((20, 20), np.int16)
    im = sitk.GetImageFromArray(a)
    sitk.WriteImage(im, str(ds3 / "imagesTr" / "zz_0000.nii.gz"))
    sitk.WriteImage(im, str(ds3 / "imagesTr" / "zz_0001.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(a.astype(np.uint8)), str(ds3 / "labelsTr" / "zz.nii.gz"))
    good, bad = validate(open_dataset(ds3))
    assert [b.name for b in bad] == ["zz"] and "2D" in bad[0].problem
