"""Fixtures of the training-time integrations: prepared folders of the brain sample."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from napari_lesionmix.batch.dataset import open_dataset
from napari_lesionmix.core.recipe import Recipe
from napari_lesionmix.integrations.prepared import write_prepared
from napari_lesionmix.sample_data import sample_dir

BRAIN = sample_dir("brain_mr")
CASES = [f"brain0{i}" for i in range(1, 7)]


@pytest.fixture(scope="session")
def brain_prepared(tmp_path_factory) -> Path:
    """``lesionmix prepare`` of the bundled 2 mm brain sample (its own recipe)."""
    out = tmp_path_factory.mktemp("prepared") / "brain"
    write_prepared(open_dataset(BRAIN), Recipe.from_json(BRAIN / "lesionmix_recipe.json"), out)
    return out


def oblique_copy(dest: Path, names=("brain01", "brain02"), recipe: dict | None = None) -> Path:
    """The brain sample's cases with a flipped, oblique header (same voxels): a raw
    nnU-Net dataset in ``dest``."""
    a, b = np.deg2rad(25.0), np.deg2rad(-10.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    direction = (rz @ rx @ np.diag([-1.0, 1.0, -1.0])).ravel()  # two axes flipped
    for sub in ("imagesTr", "labelsTr"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    for name in names:
        for src, dst in ((BRAIN / "imagesTr" / f"{name}_0000.nii.gz",
                          dest / "imagesTr" / f"{name}_0000.nii.gz"),
                         (BRAIN / "labelsTr" / f"{name}.nii.gz",
                          dest / "labelsTr" / f"{name}.nii.gz")):
            img = sitk.ReadImage(str(src))
            img.SetDirection(tuple(direction))
            img.SetOrigin((31.5, -72.25, 18.0))
            sitk.WriteImage(img, str(dst))
    meta = json.loads((BRAIN / "dataset.json").read_text())
    meta["numTraining"] = len(names)
    (dest / "dataset.json").write_text(json.dumps(meta))
    if recipe is not None:
        (dest / "lesionmix_recipe.json").write_text(json.dumps(recipe))
    return dest


def copy_sample(dest: Path) -> Path:
    shutil.copytree(BRAIN, dest)
    return dest


def tiny_nnunet(raw: Path, name: str = "Dataset990_TinyBrain", recipe: dict | None = None) -> Path:
    """The 2 mm brain sample cut to a 48 × 50 × 45 box around the periventricular white
    matter (where its lesions are), so nnU-Net plans a small network: an nnU-Net v2 raw
    dataset ``raw/name`` with its ``lesionmix_recipe.json``."""
    dest = raw / name
    for sub in ("imagesTr", "labelsTr"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    box = (slice(30, 78), slice(35, 85), slice(25, 70))  # z, y, x
    for case in CASES:
        for src, dst in ((BRAIN / "imagesTr" / f"{case}_0000.nii.gz",
                          dest / "imagesTr" / f"{case}_0000.nii.gz"),
                         (BRAIN / "labelsTr" / f"{case}.nii.gz", dest / "labelsTr" / f"{case}.nii.gz")):
            img = sitk.ReadImage(str(src))
            cut = img[box[2], box[1], box[0]]  # SimpleITK indexes x, y, z
            sitk.WriteImage(cut, str(dst))
    meta = json.loads((BRAIN / "dataset.json").read_text())
    meta.update(name=name, numTraining=len(CASES))
    (dest / "dataset.json").write_text(json.dumps(meta, indent=1))
    full = Recipe.from_json(BRAIN / "lesionmix_recipe.json").to_dict()
    full.update(recipe or {})
    (dest / "lesionmix_recipe.json").write_text(json.dumps(full, indent=1))
    return dest
