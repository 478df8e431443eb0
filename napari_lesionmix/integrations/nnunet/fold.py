"""The lesion bank, likelihood map and reference loads of one nnU-Net fold, built from its
preprocessed training cases only.

nnU-Net trains on preprocessed cases: transposed, cropped to the image's non-zero region,
resampled to the configuration's voxel size and normalised. LesionMix runs on patches of
them, so the bank, the map and the loads come from the same data, in the same voxel space
and intensity units, and from the fold's training split as nnU-Net reads it
(``nnUNetTrainer.do_split``): a validation case never gives a lesion or a location.

Each preprocessed case gets a geometry that puts it back where it was cut from: the
configuration's voxel size, the origin at the crop's corner (in the original voxel size),
the identity direction. Cases from one scanner grid then share one space; others are
aligned as ``likelihood.align`` says, as offline.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ...batch.dataset import SourceCase
from ...batch.prepare import resolve_classes
from ...core.case import Case
from ...core.geometry import Geometry
from ...core.image_io import label_dtype
from ...core.recipe import DATASET_RECIPE_FILE, Recipe
from ..prepared import PREPARED_FILE, PreparedData, write_prepared

__all__ = ["FoldSource", "find_recipe", "prepare_fold", "preprocessed_case", "RECIPE_ENV"]

#: environment variable naming the recipe the trainer uses (else see :func:`find_recipe`)
RECIPE_ENV = "LESIONMIX_RECIPE"


def find_recipe(dataset_name: str) -> tuple[Recipe, str]:
    """The recipe of a dataset's training and where it came from: ``$LESIONMIX_RECIPE``,
    else ``lesionmix_recipe.json`` in the dataset's preprocessed folder, else in its raw
    folder, else the built-in recipe."""
    given = os.environ.get(RECIPE_ENV)
    if given:
        return Recipe.from_json(given), given
    for var in ("nnUNet_preprocessed", "nnUNet_raw"):
        root = os.environ.get(var)
        path = Path(root) / dataset_name / DATASET_RECIPE_FILE if root else None
        if path is not None and path.is_file():
            return Recipe.from_json(path), str(path)
    return Recipe(), "the built-in recipe"


def preprocessed_case(name: str, data: np.ndarray, seg: np.ndarray, properties: dict,
                      spacing, transpose_forward, organ_label=None) -> Case:
    """A preprocessed case as the engine's Case (no copy of ``data`` when it is float32).

    ``seg``'s -1 (outside the image's non-zero region) becomes label 0 and is left out of
    the placement region; ``spacing`` is the configuration's voxel size (array order).
    """
    labels = np.asarray(seg)[0]
    outside = labels < 0
    top = int(labels.max()) if labels.size else 0
    labels = np.where(outside, 0, labels).astype(label_dtype(max(top, 0)))
    return Case(np.asarray(data, np.float32), labels,
                case_geometry(properties, spacing, transpose_forward), name=name,
                placement=~outside if organ_label is None else None,
                image_dtypes=["float32"] * int(data.shape[0]))


def case_geometry(properties: dict, spacing, transpose_forward) -> Geometry:
    """Voxel size ``spacing`` (array order), origin at the crop corner in millimetres of
    the original (transposed) grid, identity direction; in SimpleITK order."""
    original = [float(properties["spacing"][i]) for i in transpose_forward]
    corner = [float(lo) * s for (lo, _), s in zip(properties["bbox_used_for_cropping"], original)]
    return Geometry.identity(len(spacing), spacing=tuple(float(s) for s in spacing)[::-1],
                             origin=tuple(corner)[::-1])


class FoldSource:
    """The training cases of a fold, read one at a time, as a source of
    :func:`napari_lesionmix.batch.prepare.prepare`."""

    layout = "nnunet-preprocessed"

    def __init__(self, folder: str, keys, dataset_class, labels: dict, spacing,
                 transpose_forward, organ_label=None):
        self.folder = folder
        self.keys = sorted(keys)
        self.dataset_class = dataset_class
        self.labels = {str(k): int(v) for k, v in labels.items()
                       if isinstance(v, (int, np.integer))}
        self.spacing = list(spacing)
        self.transpose_forward = list(transpose_forward)
        self.organ_label = organ_label

    def describe(self) -> str:
        return f"{self.folder} ({len(self.keys)} training cases)"

    def iter_valid(self, bad: list, progress=None):
        dataset = self.dataset_class(self.folder, identifiers=self.keys)
        for i, key in enumerate(self.keys):
            data, seg, _, props = dataset.load_case(key)
            case = preprocessed_case(key, np.asarray(data[:]), np.asarray(seg[:]), props,
                                     self.spacing, self.transpose_forward, self.organ_label)
            yield SourceCase(key, [], None), case
            if progress is not None:
                progress(i + 1, len(self.keys))


def prepare_fold(source: FoldSource, recipe: Recipe, out: str | Path,
                 what: str) -> tuple[PreparedData, bool]:
    """The fold's prepared folder: reused when it was made from the same training cases
    and recipe, else (re)built, with the map on every case's grid.

    Returns
    -------
    (PreparedData, built) : the folder, and whether it was built now
    """
    classes = resolve_classes(source, recipe)
    recipe = recipe.replace(lesion_classes=classes) if classes else recipe
    keys = hashlib.sha256("\n".join(source.keys).encode()).hexdigest()[:12]
    description = (f"nnU-Net {what}: {len(source.keys)} preprocessed training cases "
                   f"({keys}), recipe {recipe.hash()}")
    out = Path(out)
    header = out / PREPARED_FILE
    if header.is_file():
        try:
            if json.loads(header.read_text(encoding="utf-8")).get("source") == description:
                return PreparedData.open(out), False
        except ValueError:
            pass
    data = write_prepared(source, recipe, out, case_maps=True, overwrite=True,
                          description=description)
    return data, True
