"""One pass over the input: validate every case, build the lesion bank, the likelihood map
and the reference loads (a run's one-off :class:`Setup`).

Each case is read once and dropped before the next is read, so memory holds one case, the
bank's lesion patches and the map's accumulator, whatever the number of cases. The bank
and the map are built with the same engine functions as :meth:`LesionBank.from_recipe` and
:meth:`LikelihoodMap.from_recipe` (the GUI's path), fed one case at a time. A source that
carries its own bank, map or reference loads (the napari plugin's) keeps them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.image_io import read_image
from ..core.io_utils import image_stem
from ..core.lesions import LesionBank, lesion_classes_of, lesion_load
from ..core.likelihood import LikelihoodError, LikelihoodMap
from ..core.recipe import Recipe, RecipeError
from .dataset import BadCase, SourceCase

__all__ = ["Setup", "label_volumes", "loads_from_files", "prepare", "resolve_classes"]


@dataclass
class Setup:
    """What the pass over the input found and built: everything a run shares.

    Attributes
    ----------
    good : list of SourceCase
        Valid cases, sorted by name.
    bad : list of BadCase
    bank : LesionBank
    lmap : LikelihoodMap or None
        None when not asked for, when no case has a lesion (and no floor), or when the
        source's own map is None (uniform placement).
    loads : dict
        case name → ``{"load_mm3", "load_voxels", "lesions", "label_mm3"}`` for every
        good case, zero-load cases included; ``label_mm3`` holds the volume of every
        label value present (``{"1": mm³, ...}``).
    recipe : Recipe
        The recipe with ``lesion_classes`` resolved (see :func:`resolve_classes`).
    reference : list of float, optional
        Reference loads given by the source; default the good cases' loads.
    seconds : dict
        Time spent in the pass: ``total``, and ``map`` when the map was built.
    notices : list of str
        What the user should know, e.g. cases that had to be registered to be in one
        space with the others for the likelihood map, or that use their own map.
    """

    good: list[SourceCase] = field(default_factory=list)
    bad: list[BadCase] = field(default_factory=list)
    bank: LesionBank | None = None
    lmap: LikelihoodMap | None = None
    loads: dict = field(default_factory=dict)
    recipe: Recipe | None = None
    reference: list | None = None
    seconds: dict = field(default_factory=dict)
    notices: list = field(default_factory=list)

    def reference_loads(self) -> list[float]:
        """The target distribution's reference loads in mm³: the source's, else the load
        of every good case in case order."""
        if self.reference is not None:
            return [float(v) for v in self.reference]
        return [self.loads[s.name]["load_mm3"] for s in self.good]


def resolve_classes(source, recipe: Recipe) -> list[int] | None:
    """The lesion classes: the recipe's, else the source's labels but background, the
    recipe's ``organ_label`` and nnU-Net's ``ignore`` label.

    Returns None for a paired folder before validation (labels not known yet).

    Raises
    ------
    RecipeError
        A recipe class or the ``organ_label`` is not declared by the dataset, or no
        lesion class is left.
    """
    declared = source.labels
    organ = recipe.organ_label
    if declared is not None and organ is not None and organ not in {
            int(v) for v in declared.values()}:
        raise RecipeError(f"organ_label: {organ} is not among the dataset's labels {declared}")
    if recipe.lesion_classes is not None:
        if declared is not None:
            values = {int(v) for v in declared.values()}
            extra = [c for c in recipe.lesion_classes if c not in values]
            if extra:
                raise RecipeError(f"lesion_classes: {extra} not among the dataset's labels "
                                  f"{declared}")
        return list(recipe.lesion_classes)
    if declared is None:
        return None
    classes = sorted({int(v) for k, v in declared.items()
                      if int(v) != 0 and int(v) != recipe.organ_label and k != "ignore"})
    if not classes:
        raise RecipeError(f"lesion_classes: the dataset's labels {declared} leave no lesion class "
                          f"once background and organ_label {recipe.organ_label} are set aside")
    return classes


def label_volumes(labels: np.ndarray, spacing_zyx) -> dict:
    """Volume in mm³ of every label value present but 0: ``{"1": mm³, ...}``."""
    if labels.dtype.itemsize <= 2:
        flat, counts = labels.reshape(-1), np.zeros(0, np.intp)
        for i in range(0, flat.size, 1 << 22):  # in slabs: bincount counts in 8 bytes a voxel
            part = np.bincount(flat[i:i + (1 << 22)])
            if part.size > counts.size:
                counts = np.pad(counts, (0, part.size - counts.size))
            counts[:part.size] += part
        values = np.flatnonzero(counts)
        counts = counts[values]
    else:
        values, counts = np.unique(labels, return_counts=True)
    voxel = float(np.prod(np.asarray(spacing_zyx, float)))
    return {str(int(v)): float(n * voxel) for v, n in zip(values, counts) if v != 0}


def prepare(source, recipe: Recipe, *, with_bank: bool = True, with_map: bool = True,
            progress: Callable[[int, int], None] | None = None,
            each: Callable | None = None) -> Setup:
    """Validate every case of ``source`` and build what synthesis needs, in one pass.

    Parameters
    ----------
    source : Dataset or MemorySource
    recipe : Recipe
        Lesion classes (default: see :func:`resolve_classes`), organ label, min_voxels,
        connectivity, margin, likelihood options.
    with_bank, with_map : bool
        Build the lesion bank / the likelihood map. The lesion count per case needs the
        bank's labelling and is 0 without it.
    progress : callable(done, total), optional
    each : callable(source_case, case), optional
        Called with every valid case while it is in memory (what a caller measures on
        the way, e.g. the prepared folder of the training-time transforms).

    Returns
    -------
    Setup
        Nothing is written anywhere.
    """
    t0 = time.perf_counter()
    out = Setup(reference=getattr(source, "reference_loads", None))
    classes = resolve_classes(source, recipe)
    organ = recipe.organ_label
    given_bank = getattr(source, "bank", None)
    build_bank = with_bank and given_bank is None
    bank = LesionBank(connectivity=recipe.connectivity, margin=recipe.populate.margin,
                      min_voxels=recipe.min_voxels)

    def cases():
        for src, case in source.iter_valid(out.bad, progress):
            use = classes if classes is not None else lesion_classes_of(case.labels, None, organ)
            mm3, vox = lesion_load(case.labels, use, case.geometry.spacing_zyx)
            n = bank.add_case(case, use, organ_label=organ) if build_bank else 0
            if given_bank is not None:
                n = sum(1 for e in given_bank.entries if e.lesion.case_name == src.name)
            out.good.append(src)
            out.loads[src.name] = {"load_mm3": mm3, "load_voxels": vox, "lesions": n,
                                   "label_mm3": label_volumes(case.labels,
                                                              case.geometry.spacing_zyx)}
            if each is not None:
                each(src, case)
            yield case

    gen = cases()
    if with_map and getattr(source, "lmap_given", False):
        out.lmap = source.lmap
        if out.lmap is not None:
            out.notices.extend(out.lmap.notices)
    elif with_map:
        t_map = time.perf_counter()
        try:
            out.lmap = LikelihoodMap.from_cases(
                gen, classes, organ, recipe.likelihood.sigma_mm, recipe.likelihood.floor,
                align=recipe.likelihood.align)
            out.notices.extend(out.lmap.notices)
        except LikelihoodError:
            out.lmap = None  # no lesion anywhere: populate fails later with a clear error
        out.seconds["map"] = time.perf_counter() - t_map
    for _ in gen:
        pass
    if classes is None:
        classes = resolve_classes(source, recipe)
    out.recipe = recipe.replace(lesion_classes=classes) if classes else recipe
    out.bank = given_bank if given_bank is not None else (bank if with_bank else None)
    out.seconds["total"] = time.perf_counter() - t0
    return out


def loads_from_files(paths, lesion_classes=None, organ_label=None,
                     progress: Callable[[int, int], None] | None = None) -> dict:
    """Per-case lesion loads (mm³) of label files, read one at a time.

    Parameters
    ----------
    paths : sequence of path-like
    lesion_classes : list of int, optional
        Default: every non-zero label of each file except ``organ_label``.
    organ_label : int, optional
    progress : callable(done, total), optional

    Returns
    -------
    dict
        file name (without extension) → load in mm³, in the order of ``paths``.

    Examples
    --------
    >>> loads_from_files([])
    {}
    """
    out: dict = {}
    paths = [Path(p) for p in paths]
    for i, p in enumerate(paths):
        labels, geometry, _ = read_image(p)
        classes = lesion_classes_of(labels, lesion_classes, organ_label)
        out[image_stem(p)] = lesion_load(labels, classes, geometry.spacing_zyx)[0]
        if progress is not None:
            progress(i + 1, len(paths))
    return out
