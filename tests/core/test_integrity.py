"""Corrupt image files are refused by name, in every format that carries a checksum.

A ``.nii.gz`` has a CRC-32 per gzip member; NRRD's ``gzip`` encoding carries a CRC
too; MetaImage's compressed data is a zlib stream with an Adler-32. SimpleITK's
MetaImage reader prints ``Uncompress failed`` and returns garbage; its NRRD reader
accepts some corrupt gzip streams. ``read_image`` checks every stream to its end.
Uncompressed files (``.nii``, raw ``.nrrd``/``.mha``) carry no checksum: only their
length can be checked.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from napari_lesionmix.core.errors import CaseError
from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.image_io import read_image
from tests.core.image_helpers import rng_image, sitk_write

DTYPES = [np.uint8, np.int16, np.uint16, np.int32, np.float32, np.float64, np.int64]
OFFSETS = [0.02, 0.1, 0.5, 0.9]


def _flip(path, where, mask=0x10):
    """Flip bits of one byte: at ``where`` (an int) or that share of the file (a float)."""
    raw = bytearray(path.read_bytes())
    raw[where if isinstance(where, int) else int(len(raw) * where)] ^= mask
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("ext", [".nii.gz", ".nrrd", ".mha"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_corrupt_compressed_files_are_refused(tmp_path, ext, dtype):
    arr = rng_image((24, 64, 64), dtype)
    src = sitk_write(arr, Geometry.identity(3), tmp_path / f"ok{ext}", useCompression=True)
    np.testing.assert_array_equal(read_image(src)[0], arr)
    for fraction in OFFSETS:
        bad = tmp_path / f"bad{ext}"
        bad.write_bytes(src.read_bytes())
        _flip(bad, fraction)
        with pytest.raises(CaseError, match=rf"bad\{ext}: corrupt"):
            read_image(bad)


@pytest.mark.parametrize("ext", [".mhd", ".nhdr"])
def test_corrupt_detached_data_file_is_refused(tmp_path, ext):
    arr = rng_image((24, 64, 64), np.int16)
    head = sitk_write(arr, Geometry.identity(3), tmp_path / f"bad{ext}", useCompression=True)
    data = [p for p in tmp_path.iterdir() if p != head]
    assert len(data) == 1
    np.testing.assert_array_equal(read_image(head)[0], arr)
    _flip(data[0], 0.5)
    with pytest.raises(CaseError, match=rf"{data[0].name}: corrupt"):
        read_image(head)



@pytest.mark.parametrize("ext", [".nii.gz", ".nrrd", ".mha"])
def test_truncated_compressed_files_are_refused(tmp_path, ext):
    arr = rng_image((24, 64, 64), np.int16)
    src = sitk_write(arr, Geometry.identity(3), tmp_path / f"t{ext}", useCompression=True)
    data = src.read_bytes()
    src.write_bytes(data[: int(len(data) * 0.8)])
    with pytest.raises(CaseError, match=rf"t\{ext}: (corrupt|truncated)"):
        read_image(src)


@pytest.mark.parametrize("offset", [10, 12, 16, 20, 40, 200])
def test_corrupt_deflate_near_the_start_is_named_as_corrupt(tmp_path, offset):
    """Item 3: the first deflate block of a .nii.gz holds the header. A broken one used to
    come back as SimpleITK's "Unable to determine ImageIO reader"; now the message says
    the file is corrupt."""
    arr = rng_image((24, 64, 64), np.int16)
    src = sitk_write(arr, Geometry.identity(3), tmp_path / "c.nii.gz", useCompression=True)
    _flip(src, offset, 0xFF)
    with pytest.raises(CaseError, match=r"c\.nii\.gz: corrupt gzip data"):
        read_image(src)


def test_uncompressed_formats_still_read(tmp_path):
    """No checksum to check: raw files are read as they are (length checked)."""
    arr = rng_image((8, 16, 16), np.float32)
    for ext in (".nii", ".nrrd", ".mha", ".mhd", ".nhdr"):
        p = sitk_write(arr, Geometry.identity(3), tmp_path / f"raw{ext}")
        np.testing.assert_array_equal(read_image(p)[0], arr)
    img = sitk.ReadImage(str(tmp_path / "raw.mha"))
    assert img.GetSize() == (16, 16, 8)
