"""Item 8: datasets in formats with a detached header (``.mhd`` + ``.raw``, ``.nhdr`` +
``.raw``): the originals used to be "copied byte for byte" as the header alone, every one
unreadable. nnU-Net v2 reads neither format, so the output is written as ``.nii.gz``
(voxels and geometry kept), said on stderr."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_lesionmix.batch.options import GenerateOptions
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.batch.verify import verify_output
from napari_lesionmix.core.case import Case
from napari_lesionmix.core.image_io import read_image
from tests.batch.helpers import make_nnunet


def _convert(src, dst, ending):
    (dst / "imagesTr").mkdir(parents=True)
    (dst / "labelsTr").mkdir()
    for p in sorted((src / "labelsTr").glob("*.nii.gz")):
        name = p.name[:-7]
        imgs = sorted((src / "imagesTr").glob(f"{name}_*.nii.gz"))
        case = Case.read(imgs, p)
        case.write([dst / "imagesTr" / (i.name[:-7] + ending) for i in imgs],
                   dst / "labelsTr" / (name + ending))
    meta = json.loads((src / "dataset.json").read_text())
    meta["file_ending"] = ending
    (dst / "dataset.json").write_text(json.dumps(meta))
    return dst


@pytest.mark.parametrize("ending", [".mhd", ".nhdr"])
def test_detached_header_dataset(tmp_path, ending):
    src = make_nnunet(tmp_path / "src", n_cases=2, shape=(8, 12, 12), channels=1)
    inp = _convert(src, tmp_path / "in", ending)
    assert len(list((inp / "imagesTr").iterdir())) == 4  # header + data file per image
    out = tmp_path / "out"
    said = []
    s = generate(GenerateOptions(input=inp, output=out, n=2, progress=False), say=said.append)
    assert s.exit_code == 0
    assert any(".nii.gz" in m and ending in m for m in said), said
    assert json.loads((out / "dataset.json").read_text())["file_ending"] == ".nii.gz"
    assert verify_output(out)[1] == []
    for name in ("sub00", "sub01"):
        a = read_image(out / "imagesTr" / f"{name}_0000.nii.gz")
        b = read_image(inp / "imagesTr" / f"{name}_0000{ending}")
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1].matches(b[1])
