"""Comparing output datasets: the same files with the same arrays and provenance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napari_lesionmix.core.image_io import read_image
from napari_lesionmix.core.io_utils import is_temporary

FOLDERS = ("imagesTr", "labelsTr", "provenance")


def case_files(out: Path) -> set[str]:
    """Files of imagesTr, labelsTr and provenance, relative to ``out``."""
    return {p.relative_to(out).as_posix() for d in FOLDERS if (out / d).is_dir()
            for p in (out / d).iterdir()}


def assert_same_arrays(out: Path, clean: Path, provenance: bool = True) -> None:
    """``out`` holds the files of ``clean``, with equal arrays and (unless not
    ``provenance``: e.g. a run of the same data from another folder) provenance."""
    files, want = case_files(out), case_files(clean)
    assert files == want, (sorted(files - want), sorted(want - files))
    for rel in sorted(files):
        if rel.endswith(".json"):
            if not provenance:
                continue
            assert json.loads((out / rel).read_text()) == json.loads((clean / rel).read_text())
        else:
            a, ga, _ = read_image(out / rel)
            b, gb, _ = read_image(clean / rel)
            assert a.dtype == b.dtype and np.array_equal(a, b), rel
            assert ga == gb, rel


def temporaries(out: Path) -> list[Path]:
    """Temporary files left anywhere in ``out``."""
    if not out.exists():
        return []
    return sorted(p for p in out.rglob("*") if p.is_file() and is_temporary(p))


def clean_run(dataset: Path, folder: Path, n: int) -> Path:
    """A run of ``n`` cases that nothing disturbed, in ``folder/out``: what a stopped and
    resumed run must equal."""
    from napari_lesionmix.batch.options import GenerateOptions
    from napari_lesionmix.batch.runner import generate

    out = folder / "out"
    assert generate(GenerateOptions(input=dataset, output=out, n=n, progress=False),
                    say=lambda m: None).exit_code == 0
    return out
