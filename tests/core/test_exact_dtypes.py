"""Item 11: images whose values float32 cannot hold (float64, large int64/int32) keep every
voxel the engine did not change, bit for bit; they used to be rounded through float32
(every voxel of a float64 image changed)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_lesionmix.batch.options import GenerateOptions
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.core.case import Case
from napari_lesionmix.core.image_io import read_image, write_image
from napari_lesionmix.core.recipe import Recipe
from tests.batch.helpers import make_nnunet


def _retype(ds, dtype, offset):
    """Rewrite every image of ``ds`` in ``dtype`` with foreground values float32 cannot
    hold (the background stays 0)."""
    for p in sorted((ds / "imagesTr").iterdir()):
        arr, geometry, _ = read_image(p)
        fg = arr != 0
        if np.dtype(dtype).kind == "f":
            noise = np.random.default_rng(0).random(arr.shape) * 1e-3
            arr = np.where(fg, arr + noise, 0.0)
        else:
            arr = np.where(fg, arr.astype(np.int64) + offset, 0)
        write_image(arr.astype(dtype), geometry, p, overwrite=True)


@pytest.mark.parametrize("dtype,offset", [(np.float64, 0), (np.int64, 2**40),
                                          (np.int32, 2**26)])
def test_unchanged_voxels_are_kept_exactly(tmp_path, dtype, offset):
    ds = make_nnunet(tmp_path / "in", n_cases=2, shape=(12, 32, 32), channels=1)
    _retype(ds, dtype, offset)
    case = Case.read([ds / "imagesTr" / "sub00_0000.nii.gz"], ds / "labelsTr" / "sub00.nii.gz")
    src = read_image(ds / "imagesTr" / "sub00_0000.nii.gz")[0]
    assert src.dtype == dtype
    assert not np.array_equal(src.astype(np.float32).astype(dtype), src)  # float32 loses them
    out = tmp_path / "c.nii.gz"
    case.write([out], None)
    assert np.array_equal(read_image(out)[0], src)  # read and written: bit for bit
    res = tmp_path / "out"
    s = generate(GenerateOptions(input=ds, output=res, n=4, progress=False,
                                 recipe=Recipe(load_distribution="uniform", seed=3)),
                 say=lambda m: None)
    assert s.exit_code == 0
    changed_any = False
    for name in s.names:
        a = read_image(res / "imagesTr" / f"{name}_0000.nii.gz")[0]
        b = read_image(ds / "imagesTr" / f"{name.split('_lmix')[0]}_0000.nii.gz")[0]
        assert a.dtype == dtype
        fg = b != 0
        kept = a.astype(np.float32) == b.astype(np.float32)  # voxels the engine left alone
        changed_any |= not kept.all()
        assert kept[fg].mean() > 0.3
        assert np.array_equal(a[kept], b[kept])  # ... keep their exact source values
    assert changed_any


def test_arrays_in_memory_keep_their_exact_values(tmp_path):
    """The plugin's export: a float64 layer written back as float64, bit for bit."""
    arr = np.random.default_rng(1).random((6, 10, 12)) * 100 + 1
    case = Case.from_arrays(arr, np.zeros(arr.shape, np.uint8))
    assert case.image_dtypes == ["float64"]
    case.write([tmp_path / "a.nii.gz"], tmp_path / "l.nii.gz")
    assert np.array_equal(read_image(tmp_path / "a.nii.gz")[0], arr)
