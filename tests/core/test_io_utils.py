"""File names and atomic writes (core.io_utils): one home for both, and file modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.image_io import write_image
from napari_lesionmix.core.io_utils import (
    atomic_path,
    atomic_write_text,
    channel_file,
    file_mode,
    image_stem,
    is_temporary,
    label_files_of,
    list_image_files,
    split_channel,
    split_ext,
)


@pytest.fixture
def umask():
    """Set the process umask for a test; restored afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077])
def test_files_get_the_mode_a_plain_open_gives(tmp_path, umask, mask):
    umask(mask)
    assert file_mode() == 0o666 & ~mask
    atomic_write_text(tmp_path / "a.json", "{}")
    write_image(np.zeros((3, 4, 5), np.int16), Geometry.identity(3), tmp_path / "b.nii.gz",
                tmp_dir=tmp_path / "tmp")
    with open(tmp_path / "plain.txt", "w") as fh:
        fh.write("x")
    for name in ("a.json", "b.nii.gz"):
        assert mode(tmp_path / name) == mode(tmp_path / "plain.txt") == 0o666 & ~mask, name


def test_a_whole_output_is_group_readable_under_umask_022(tmp_path, umask):
    from napari_lesionmix.batch.options import GenerateOptions
    from napari_lesionmix.batch.runner import generate
    from tests.batch.helpers import make_nnunet

    ds = make_nnunet(tmp_path / "in", n_cases=2, channels=1)
    umask(0o022)
    out = tmp_path / "out"
    generate(GenerateOptions(ds, out, 2, workers=1, progress=False), say=lambda m: None)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 10
    assert {oct(mode(p)) for p in files} == {oct(0o644)}


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.nii.gz") as tmp:
        tmp.write_bytes(b"half")
        assert is_temporary(tmp) and tmp.name.endswith(".tmp.nii.gz")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_names():
    assert split_ext("Sub01_0000.NII.GZ") == ("Sub01_0000", ".NII.GZ")
    assert split_ext("x.mhd") == ("x", ".mhd") and split_ext("x.txt") == ("x.txt", "")
    assert image_stem("/a/b/case.nrrd") == "case" and image_stem("notes") == "notes"
    assert channel_file("c", 12, ".mha") == "c_0012.mha"
    assert split_channel("case_0003") == ("case", 3)
    assert split_channel("case_03") is None and split_channel("case") is None
    assert split_channel(channel_file("a_b", 7, "")) == ("a_b", 7)


def test_listing_skips_hidden_temporary_and_other_files(tmp_path):
    for name in ("b.nii.gz", "a.mha", ".hidden.nii", ".x.abc.tmp.nii.gz", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.nii").mkdir()
    assert [p.name for p in list_image_files(tmp_path)] == ["a.mha", "b.nii.gz"]
    assert list_image_files(tmp_path / "missing") == []


def test_label_files_of_a_dataset_or_a_folder(tmp_path):
    (tmp_path / "ds" / "labelsTr").mkdir(parents=True)
    (tmp_path / "ds" / "imagesTr").mkdir()
    (tmp_path / "ds" / "labelsTr" / "c.nii.gz").write_bytes(b"")
    (tmp_path / "ds" / "imagesTr" / "c_0000.nii.gz").write_bytes(b"")
    assert [p.name for p in label_files_of(tmp_path / "ds")] == ["c.nii.gz"]
    assert [p.name for p in label_files_of(tmp_path / "ds" / "imagesTr")] == ["c_0000.nii.gz"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no NIfTI"):
        label_files_of(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        label_files_of(tmp_path / "nope")
