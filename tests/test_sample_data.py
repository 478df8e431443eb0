"""The bundled sample datasets and their generator (napari_lesionmix.sample_data)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from napari_lesionmix.core.recipe import DATASET_RECIPE_FILE
from napari_lesionmix.sample_data import load_sample, make, sample_dir, sample_paths

N_CASES = {"brain_mr": 6, "liver_ct": 4}


def _read(path):
    img = sitk.ReadImage(str(path))
    return img, sitk.GetArrayFromImage(img)


def _cases(name):
    return [(_read(images[0]), _read(label)) for images, label in sample_paths(name)]


@pytest.fixture(scope="module")
def brain():
    return _cases("brain_mr")


@pytest.fixture(scope="module")
def liver():
    return _cases("liver_ct")


@pytest.mark.parametrize("name", sorted(N_CASES))
def test_bundled_files_exist_in_nnunet_layout(name):
    folder = sample_dir(name)
    meta = json.loads((folder / "dataset.json").read_text())
    cases = sample_paths(name)
    assert len(cases) == N_CASES[name] == meta["numTraining"]
    assert meta["file_ending"] == ".nii.gz"
    for images, label in cases:
        assert len(images) == len(meta["channel_names"]) == 1
        assert images[0].exists() and label.exists()
        assert images[0].parent == folder / "imagesTr" and label.parent == folder / "labelsTr"
        assert images[0].name == label.name.replace(".nii.gz", "_0000.nii.gz")
    assert load_sample(name) == cases[0]
    assert sample_dir(name.split("_")[0]) == folder  # alias "brain" / "liver"


@pytest.mark.parametrize("name", sorted(N_CASES))
def test_each_sample_ships_the_recipe_its_generator_writes(name):
    shipped = json.loads((sample_dir(name) / DATASET_RECIPE_FILE).read_text())
    assert shipped == make.sample_recipe(name.split("_")[0]).to_dict()


def test_unknown_sample_name():
    with pytest.raises(KeyError, match="unknown sample"):
        sample_dir("heart")


def test_folder_is_small_and_documented():
    root = sample_dir("brain_mr").parent
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()
                and "__pycache__" not in p.parts)
    assert total < 10 * 1024 * 1024
    assert (root / "README.md").exists()
    assert "Louis Collins" in (root / "NOTICE").read_text()


@pytest.mark.parametrize("name", sorted(N_CASES))
def test_label_values_are_declared(name, brain, liver):
    declared = set(json.loads((sample_dir(name) / "dataset.json").read_text())["labels"].values())
    for (img, arr), (lab, lbl) in brain if name == "brain_mr" else liver:
        assert set(np.unique(lbl)) == declared
        assert lbl.shape == arr.shape
        assert lab.GetSpacing() == img.GetSpacing() and lab.GetOrigin() == img.GetOrigin()
        assert lab.GetDirection() == img.GetDirection()


def test_brain_geometry(brain):
    for (img, arr), _ in brain:
        assert img.GetSpacing() == (2.0, 2.0, 2.0)
        assert img.GetSize() == (99, 117, 95)
        assert img.GetOrigin() == (98.0, 134.0, -72.0)  # the MNI template's
        assert np.allclose(img.GetDirection(), (-1, 0, 0, 0, -1, 0, 0, 0, 1))
        assert arr.dtype == np.int16


def test_brain_background_is_zero(brain):
    for (_, arr), (_, lbl) in brain:
        fg = arr != 0
        assert arr.min() == 0 and 0.2 < fg.mean() < 0.6
        # nothing on the faces of the volume, except where the brainstem leaves the
        # template's field of view at the bottom (inferior face, z = 0)
        for axis in range(3):
            assert not fg.take(-1, axis=axis).any()
            assert not fg.take(0, axis=axis).any() or (axis == 0 and fg[0].sum() < 100)
        lab, n = ndi.label(fg)
        assert np.bincount(lab.ravel())[1:].max() > 0.999 * fg.sum()  # one brain
        assert not (lbl[~fg] > 0).any()


def test_brain_lesions_present_varied_and_hypointense(brain):
    loads = []
    for (img, arr), (_, lbl) in brain:
        lesion = lbl == 1
        assert make.count_lesions(lesion) >= 2
        loads.append(lesion.sum() * np.prod(img.GetSpacing()) / 1000.0)
        # darker than the white matter around them (T1: lesions are hypointense)
        ring = ndi.binary_dilation(lesion, iterations=2) & ~lesion & (arr > 0) & (lbl == 0)
        assert arr[lesion].mean() < arr[ring].mean() - 30
        assert arr[lesion].mean() < np.percentile(arr[arr > 0], 50)
        # mostly inside the bright (white-matter) region
        wm = ndi.median_filter(arr, 3) > np.percentile(arr[arr > 0], 60)
        grown = ndi.binary_dilation(wm, iterations=3)
        assert grown[lesion].mean() > 0.9
    assert max(loads) / min(loads) > 4
    assert min(loads) >= 0.3 and max(loads) <= 25


def test_liver_geometry_and_hounsfield_units(liver):
    for (img, arr), (_, lbl) in liver:
        assert img.GetSpacing() == (1.5, 1.5, 3.0)
        assert img.GetSize() == (128, 128, 48)
        assert img.GetDirection() == (1, 0, 0, 0, 1, 0, 0, 0, 1)
        assert arr.dtype == np.int16
        assert arr.min() >= -1024 and arr.max() <= 3071
        assert arr[0, 0, 0] == -1024  # outside the reconstruction circle
        assert arr.max() > 300  # bone
        liver_hu = np.median(arr[lbl == 1])
        tumour_hu = np.median(arr[lbl == 2])
        assert 40 < liver_hu < 90
        assert 0 < tumour_hu < liver_hu - 15
        assert make.count_lesions(lbl == 2) >= 1
        assert (lbl == 1).sum() > (lbl == 2).sum()  # the organ is the larger region


def test_cli_refuses_to_overwrite(tmp_path):
    out = tmp_path / "liver_ct" / "labelsTr"
    out.mkdir(parents=True)
    (out / "liver01.nii.gz").write_bytes(b"")
    assert make.main(["liver", "--n", "1", "--out", str(tmp_path)]) == 1
    assert (out / "liver01.nii.gz").read_bytes() == b""
    assert not (tmp_path / "liver_ct" / "dataset.json").exists()


def test_liver_generation_is_deterministic(tmp_path):
    for sub in ("a", "b"):
        assert make.main(["liver", "--n", "1", "--out", str(tmp_path / sub)]) == 0
    a = _read(tmp_path / "a" / "liver_ct" / "imagesTr" / "liver01_0000.nii.gz")[1]
    b = _read(tmp_path / "b" / "liver_ct" / "imagesTr" / "liver01_0000.nii.gz")[1]
    np.testing.assert_array_equal(a, b)
    bundled = _read(sample_paths("liver_ct")[0][1])[1]
    again = _read(tmp_path / "a" / "liver_ct" / "labelsTr" / "liver01.nii.gz")[1]
    assert (bundled == again).mean() > 0.999
    recipe = tmp_path / "a" / "liver_ct" / DATASET_RECIPE_FILE
    assert recipe.read_text() == (sample_dir("liver_ct") / DATASET_RECIPE_FILE).read_text()
    assert make.main(["liver", "--n", "1", "--seed", "5", "--out", str(tmp_path / "c")]) == 0
    c = _read(tmp_path / "c" / "liver_ct" / "imagesTr" / "liver01_0000.nii.gz")[1]
    assert not np.array_equal(a, c)


@pytest.mark.slow
def test_brain_generation_is_deterministic(tmp_path):
    pytest.importorskip("nilearn", reason="generating the brain needs nilearn's MNI template (test extra)")
    arrays = []
    for sub in ("a", "b"):
        assert make.main(["brain", "--n", "1", "--out", str(tmp_path / sub)]) == 0
        folder = tmp_path / sub / "brain_mr"
        arrays.append((_read(folder / "imagesTr" / "brain01_0000.nii.gz")[1],
                       _read(folder / "labelsTr" / "brain01.nii.gz")[1]))
    np.testing.assert_array_equal(arrays[0][0], arrays[1][0])
    np.testing.assert_array_equal(arrays[0][1], arrays[1][1])
    # and it is what is bundled (seed 0), up to tiny numerical differences across versions
    images, label = sample_paths("brain_mr")[0]
    assert (np.abs(_read(images[0])[1].astype(int) - arrays[0][0]) <= 1).mean() > 0.999
    assert (_read(label)[1] == arrays[0][1]).mean() > 0.999


@pytest.mark.slow
def test_brain_one_mm_on_demand(tmp_path):
    pytest.importorskip("nilearn", reason="generating the brain needs nilearn's MNI template (test extra)")
    assert make.main(["brain", "--n", "1", "--resolution", "1", "--seed", "3",
                      "--out", str(tmp_path)]) == 0
    folder = tmp_path / "brain_mr"
    img, arr = _read(folder / "imagesTr" / "brain01_0000.nii.gz")
    lab, lbl = _read(folder / "labelsTr" / "brain01.nii.gz")
    assert img.GetSize() == lab.GetSize() == (197, 233, 189)
    assert img.GetSpacing() == (1.0, 1.0, 1.0)
    assert (lbl == 1).sum() > 0 and not (lbl[arr == 0] > 0).any()
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["numTraining"] == 1 and meta["labels"] == {"background": 0, "lesion": 1}
    assert (folder / DATASET_RECIPE_FILE).is_file()


@pytest.mark.slow
def test_brain_with_a_flair_like_channel_in_float32(tmp_path):
    pytest.importorskip("nilearn", reason="generating the brain needs nilearn's MNI template (test extra)")
    assert make.main(["brain", "--n", "1", "--channels", "t1,flair", "--dtype", "float32",
                      "--out", str(tmp_path / "two")]) == 0
    folder = tmp_path / "two" / "brain_mr"
    t1, t1a = _read(folder / "imagesTr" / "brain01_0000.nii.gz")
    fl, fla = _read(folder / "imagesTr" / "brain01_0001.nii.gz")
    _, lbl = _read(folder / "labelsTr" / "brain01.nii.gz")
    assert t1a.dtype == fla.dtype == np.float32 and fl.GetSpacing() == t1.GetSpacing()
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "T1", "1": "FLAIR"}
    # the T1 is the one-channel T1 (the FLAIR draws from its own stream)
    bundled = _read(sample_paths("brain_mr")[0][0][0])[1]
    assert (np.abs(t1a - bundled) <= 1).mean() > 0.999
    # FLAIR-like: lesions bright against the white matter around them, CSF dark
    lesion = lbl == 1
    ring = ndi.binary_dilation(lesion, iterations=2) & ~lesion & (fla > 0)
    assert fla[lesion].mean() > fla[ring].mean() + 0.1 * fla[fla > 0].mean()
    wm = t1a > np.percentile(t1a[t1a > 0], 70)
    csf = (t1a > 0) & (t1a < np.percentile(t1a[t1a > 0], 10))
    assert fla[csf].mean() < 0.7 * fla[wm].mean()


def test_module_runs_as_a_script():
    out = subprocess.run([sys.executable, "-m", "napari_lesionmix.sample_data", "--help"],
                         capture_output=True, text=True, check=True)
    assert "{brain,liver,all}" in out.stdout and "--resolution" in out.stdout
    assert "(default: all)" in out.stdout and "--channels" in out.stdout
    assert "--tissue" in out.stdout and "--dtype" in out.stdout


@pytest.mark.slow
def test_brain_flair_channel_and_tissue_map(tmp_path):
    pytest.importorskip("nilearn", reason="generating the brain needs nilearn's MNI template (test extra)")
    assert make.main(["brain", "--n", "1", "--channels", "t1,flair", "--tissue",
                      "--out", str(tmp_path)]) == 0
    folder = tmp_path / "brain_mr"
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "T1", "1": "FLAIR"}
    t1 = _read(folder / "imagesTr" / "brain01_0000.nii.gz")[1]
    flair = _read(folder / "imagesTr" / "brain01_0001.nii.gz")[1]
    lbl = _read(folder / "labelsTr" / "brain01.nii.gz")[1]
    tissue = _read(folder / "tissueTr" / "brain01.nii.gz")[1]
    # the T1 and the label are the bundled ones: FLAIR draws from its own stream
    images, label = sample_paths("brain_mr")[0]
    np.testing.assert_array_equal(t1, _read(images[0])[1])
    np.testing.assert_array_equal(lbl, _read(label)[1])
    lesion = lbl == 1
    ring = ndi.binary_dilation(lesion, iterations=2) & ~lesion & (t1 > 0)
    assert flair[lesion].mean() > flair[ring].mean() + 100  # hyperintense on FLAIR
    med = {c: np.median(flair[tissue == c]) for c in (1, 2, 3)}
    assert med[1] < med[3] < med[2]  # CSF suppressed, grey matter above white matter
    assert set(np.unique(tissue)) == {0, 1, 2, 3} and not tissue[t1 == 0].any()
    assert (tissue[lesion] == 3).mean() > 0.9  # the bundled lesions are white-matter lesions
    assert make.main(["brain", "--n", "1", "--channels", "t2", "--out", str(tmp_path / "x")]) == 1
