"""Bundled sample datasets: where they are on disk.

Two small synthetic datasets in nnU-Net v2 raw layout ship with the package (see
``README.md`` in this folder for what they are and how they were made):

- ``"brain_mr"``: 6 MS-like T1 brain MR subjects, 2 mm isotropic, label 1 = lesion.
- ``"liver_ct"``: 4 abdominal CT cases, label 1 = liver, 2 = tumour.

This module only computes paths (no nilearn, no generation). The generator is
:mod:`napari_lesionmix.sample_data.make`, run as ``python -m napari_lesionmix.sample_data``.

Examples
--------
>>> from napari_lesionmix.sample_data import sample_paths
>>> images, label = sample_paths("brain_mr")[0]
>>> [p.name for p in images], label.name
(['brain01_0000.nii.gz'], 'brain01.nii.gz')
"""

from __future__ import annotations

from pathlib import Path

from ..core.io_utils import channel_file, parse_json

__all__ = ["SAMPLES", "load_sample", "sample_dir", "sample_paths"]

_HERE = Path(__file__).resolve().parent
#: sample name -> folder name inside this package
SAMPLES = {"brain_mr": "brain_mr", "liver_ct": "liver_ct"}
_ALIASES = {"brain": "brain_mr", "liver": "liver_ct"}


def sample_dir(name: str) -> Path:
    """Folder of a bundled sample dataset.

    Parameters
    ----------
    name : {"brain_mr", "liver_ct"}
        Also accepted: ``"brain"``, ``"liver"``.

    Returns
    -------
    pathlib.Path
        The dataset folder (holding ``dataset.json``, ``imagesTr/``, ``labelsTr/``).

    Raises
    ------
    KeyError
        For an unknown name.
    """
    key = _ALIASES.get(name, name)
    if key not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; choose one of {sorted(SAMPLES)}")
    return _HERE / SAMPLES[key]


def sample_paths(name: str) -> list[tuple[list[Path], Path]]:
    """Image and label paths of every case of a bundled sample dataset.

    Parameters
    ----------
    name : {"brain_mr", "liver_ct"}

    Returns
    -------
    list of (list of pathlib.Path, pathlib.Path)
        Per case, sorted by case name: the channel images (``_0000``, ``_0001``, ... in
        ``dataset.json`` order) and the label map.

    Raises
    ------
    FileNotFoundError
        If the dataset or one of its files is missing.
    """
    folder = sample_dir(name)
    meta_path = folder / "dataset.json"
    if not meta_path.exists():
        raise FileNotFoundError(
            f"{meta_path}: missing; regenerate with `python -m napari_lesionmix.sample_data all`")
    meta = parse_json(meta_path.read_text())
    ending = meta.get("file_ending", ".nii.gz")
    n_channels = len(meta["channel_names"])
    cases = []
    for label in sorted((folder / "labelsTr").glob(f"*{ending}")):
        if label.name.startswith("."):  # leftover temporary file
            continue
        case = label.name[: -len(ending)]
        images = [folder / "imagesTr" / channel_file(case, c, ending) for c in range(n_channels)]
        missing = [str(p) for p in images if not p.exists()]
        if missing:
            raise FileNotFoundError(f"{folder}: case {case} has no image {missing[0]}")
        cases.append((images, label))
    if not cases:
        raise FileNotFoundError(f"{folder / 'labelsTr'}: no label files")
    return cases


def load_sample(name: str, index: int = 0) -> tuple[list[Path], Path]:
    """Paths of one case of a bundled sample dataset.

    Parameters
    ----------
    name : {"brain_mr", "liver_ct"}
    index : int
        Case index (0 = first case).

    Returns
    -------
    (list of pathlib.Path, pathlib.Path)
        Channel images and label map.
    """
    return sample_paths(name)[index]
