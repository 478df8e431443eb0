"""Helpers of the batch tests: small nnU-Net v2 raw datasets built on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napari_lesionmix.core.geometry import Geometry
from tests.conftest import blob_case


def make_nnunet(root: Path, n_cases: int = 4, shape=(12, 20, 20), channels: int = 2,
                spacing=(1.0, 1.0, 1.5), organ: bool = False, prefix: str = "sub",
                zero_load: bool = True) -> Path:
    """Write an nnU-Net v2 raw dataset of blob cases; return its folder.

    Case ``sub00`` ... ; with ``zero_load`` the last case has no lesion. Images are int16
    (as scanners write them), labels uint8, origin and spacing differ per case.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "imagesTr").mkdir(exist_ok=True)
    (root / "labelsTr").mkdir(exist_ok=True)
    for i in range(n_cases):
        n_les = 0 if (zero_load and i == n_cases - 1) else 2 + i % 3
        c = blob_case(shape=shape, n_lesions=n_les, seed=10 + i, channels=channels,
                      name=f"{prefix}{i:02d}", organ=organ)
        c.geometry = Geometry(spacing, (-10.0 + i, 5.0, 2.5 * i), tuple(np.eye(len(shape)).ravel()))
        c.image_dtypes = ["int16"] * channels
        c.write([root / "imagesTr" / f"{c.name}_{k:04d}.nii.gz" for k in range(channels)],
                root / "labelsTr" / f"{c.name}.nii.gz")
    labels = {"background": 0, "liver": 1, "tumour": 2} if organ else {"background": 0, "lesion": 1}
    meta = {"name": "Test", "channel_names": {str(k): f"ch{k}" for k in range(channels)},
            "labels": labels, "numTraining": n_cases, "file_ending": ".nii.gz"}
    (root / "dataset.json").write_text(json.dumps(meta, indent=1))
    return root
