"""Item 9: the files of a case must share a grid at least as strictly as nnU-Net v2 checks.

nnU-Net's reader refuses channels (and ``verify_dataset_integrity`` a label) whose
spacing differs by more than ``numpy.allclose``'s defaults (rtol 1e-5, atol 1e-8); a
looser check of ours would let through a dataset nnU-Net then rejects.
"""

from __future__ import annotations

import numpy as np
import pytest
from nnunetv2.imageio.base_reader_writer import BaseReaderWriter

from napari_lesionmix.batch.verify import verify_output
from napari_lesionmix.core.case import Case
from napari_lesionmix.core.errors import CaseError
from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.image_io import read_image, write_image
from tests.batch.helpers import make_nnunet

SPACING = (1.0, 1.0, 1.5)


@pytest.mark.parametrize("delta", [1.5e-5, 4e-5])
def test_spacing_mismatch_nnunet_refuses_is_refused(tmp_path, delta):
    img, lab = tmp_path / "img.nii.gz", tmp_path / "lab.nii.gz"
    write_image(np.ones((4, 5, 6), np.int16), Geometry(SPACING, (0, 0, 0), tuple(np.eye(3).ravel())), img)
    other = (SPACING[0] + delta, SPACING[1], SPACING[2])
    write_image(np.zeros((4, 5, 6), np.uint8), Geometry(other, (0, 0, 0), tuple(np.eye(3).ravel())), lab)
    sp_img, sp_lab = read_image(img)[1].spacing, read_image(lab)[1].spacing
    # nnU-Net's own rule (its reader's check across files) refuses this pair ...
    assert not BaseReaderWriter._check_all_same([sp_img, sp_lab])
    # ... so ours must too
    with pytest.raises(CaseError, match="spacing"):
        Case.read([img], lab)


def test_spacing_within_nnunets_tolerance_is_accepted(tmp_path):
    img, lab = tmp_path / "img.nii.gz", tmp_path / "lab.nii.gz"
    g = Geometry(SPACING, (0, 0, 0), tuple(np.eye(3).ravel()))
    write_image(np.ones((4, 5, 6), np.int16), g, img)
    write_image(np.zeros((4, 5, 6), np.uint8), g, lab)
    Case.read([img], lab)


def test_verify_refuses_what_nnunet_refuses(tmp_path):
    from napari_lesionmix.batch.options import GenerateOptions
    from napari_lesionmix.batch.runner import generate

    inp = make_nnunet(tmp_path / "in", n_cases=2, shape=(8, 12, 12), channels=1)
    out = tmp_path / "out"
    assert generate(GenerateOptions(input=inp, output=out, n=2, progress=False),
                    say=lambda m: None).exit_code == 0
    label = out / "labelsTr" / "sub00.nii.gz"
    arr, geom, _ = read_image(label)
    write_image(arr, Geometry((geom.spacing[0] + 1.5e-5, *geom.spacing[1:]), geom.origin,
                              geom.direction), label, overwrite=True)
    problems = verify_output(out)[1]
    assert any("sub00" in p and "spacing" in p for p in problems), problems
