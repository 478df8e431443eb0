"""Item 1: a write is complete only when checked; a full disk is an error naming the file.

SimpleITK's NIfTI writer prints ``NWAD: wrote only 0 of ... bytes`` and returns without an
error; the file used to be renamed into place, truncated. These tests write on a real
full file system (a small tmpfs, see ``tests/faults.py``).
"""

from __future__ import annotations

import errno

import numpy as np
import pytest
import SimpleITK as sitk

from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.image_io import read_image, write_image
from napari_lesionmix.core.io_utils import atomic_write_text
from tests.core.image_helpers import rng_image
from tests.faults import small_disk

EXTS = [".nii", ".nii.gz", ".nrrd", ".mha", ".mhd", ".nhdr"]


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name != ".ballast")


@pytest.mark.parametrize("ext", EXTS)
def test_full_disk_is_an_error_and_leaves_nothing(tmp_path, ext):
    arr = rng_image((20, 64, 64), np.int16)
    with small_disk(tmp_path, 2 << 20) as disk:
        disk.fill(free=16 << 10)
        target = disk.root / f"img{ext}"
        with pytest.raises(OSError) as err:
            write_image(arr, Geometry.identity(3), target)
        assert err.value.errno == errno.ENOSPC
        assert f"img{ext}" in str(err.value)
        assert _leftovers(disk.root) == []


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
def test_space_freed_mid_write_is_still_an_error(tmp_path, ext, monkeypatch):
    """SimpleITK writes short on a full disk; space comes back before anything else is
    written (another process deleted a file): the short file must not be renamed."""
    arr = rng_image((20, 64, 64), np.int16)
    with small_disk(tmp_path, 2 << 20) as disk:
        original = sitk.ImageFileWriter.Execute

        def execute_then_free(self, *args):
            out = original(self, *args)
            disk.release()
            return out

        monkeypatch.setattr(sitk.ImageFileWriter, "Execute", execute_then_free)
        disk.fill(free=16 << 10)
        target = disk.root / f"img{ext}"
        with pytest.raises(OSError, match=f"img{ext}"):
            write_image(arr, Geometry.identity(3), target)
        assert _leftovers(disk.root) == []
        monkeypatch.undo()
        write_image(arr, Geometry.identity(3), target)  # space is back: it works
        np.testing.assert_array_equal(read_image(target)[0], arr)


def test_text_on_a_full_disk_names_the_final_file(tmp_path):
    with small_disk(tmp_path, 1 << 20) as disk:
        disk.fill(free=0)
        with pytest.raises(OSError, match=r"manifest\.json") as err:
            atomic_write_text(disk.root / "manifest.json", "x" * 100_000)
        assert err.value.errno == errno.ENOSPC
        assert _leftovers(disk.root) == []
