"""One pass over the input: validate every case, build the lesion bank, the likelihood map
and the reference loads.

Each case is read once and dropped before the next is read, so memory holds one case, the
bank's lesion patches and the map's accumulator, whatever the number of cases. The bank
and the map are built with the same engine functions as :meth:`LesionBank.from_recipe` and
:meth:`LikelihoodMap.from_recipe` (the GUI's path), fed one case at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.lesions import LesionBank, lesion_classes_of, lesion_load
from ..core.likelihood import LikelihoodError, LikelihoodMap
from ..core.recipe import Recipe, RecipeError
from .dataset import BadCase, Dataset, SourceCase, iter_valid

__all__ = ["Prepared", "prepare", "resolve_classes"]


@dataclass
class Prepared:
    """What the pass over the input found and built.

    Attributes
    ----------
    good : list of SourceCase
        Valid cases, sorted by name.
    bad : list of BadCase
    bank : LesionBank
    lmap : LikelihoodMap or None
        None when not asked for, or when no case has a lesion (and no floor).
    loads : dict
        case name → ``{"load_mm3", "load_voxels", "lesions"}`` for every good case,
        zero-load cases included.
    recipe : Recipe
        The recipe with ``lesion_classes`` resolved (see :func:`resolve_classes`).
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
    notices: list = field(default_factory=list)

    def reference_loads(self) -> list[float]:
        """Per-case loads in mm³ of every good case, in case order."""
        return [self.loads[s.name]["load_mm3"] for s in self.good]


def resolve_classes(dataset: Dataset, recipe: Recipe) -> list[int] | None:
    """The lesion classes: the recipe's, else the dataset's labels but background, the
    recipe's ``organ_label`` and nnU-Net's ``ignore`` label.

    Returns None for a paired folder before validation (labels not known yet).

    Raises
    ------
    RecipeError
        A recipe class is not declared by the dataset, or no lesion class is left.
    """
    declared = dataset.labels
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


def prepare(dataset: Dataset, recipe: Recipe, *, with_bank: bool = True, with_map: bool = True,
            progress: Callable[[int, int], None] | None = None) -> Prepared:
    """Validate every case of ``dataset`` and build what synthesis needs, in one pass.

    Parameters
    ----------
    dataset : Dataset
    recipe : Recipe
        Lesion classes (default: see :func:`resolve_classes`), organ label, min_voxels,
        connectivity, margin, likelihood options.
    with_bank, with_map : bool
        Build the lesion bank / the likelihood map. The lesion count per case needs the
        bank's labelling and is 0 without it.
    progress : callable(done, total), optional

    Returns
    -------
    Prepared
        Nothing is written anywhere.
    """
    out = Prepared()
    classes = resolve_classes(dataset, recipe)
    organ = recipe.organ_label
    bank = LesionBank(connectivity=recipe.connectivity, margin=recipe.populate.margin,
                      min_voxels=recipe.min_voxels)

    def cases():
        for source, case in iter_valid(dataset, out.bad, progress):
            use = classes if classes is not None else lesion_classes_of(case.labels, None, organ)
            mm3, vox = lesion_load(case.labels, use, case.geometry.spacing_zyx)
            n = bank.add_case(case, use, organ_label=organ) if with_bank else 0
            out.good.append(source)
            out.loads[source.name] = {"load_mm3": mm3, "load_voxels": vox, "lesions": n}
            yield case

    gen = cases()
    if with_map:
        try:
            out.lmap = LikelihoodMap.from_cases(
                gen, classes, organ, recipe.likelihood.sigma_mm, recipe.likelihood.floor,
                align=recipe.likelihood.align)
            out.notices.extend(out.lmap.notices)
        except LikelihoodError:
            out.lmap = None  # no lesion anywhere: populate fails later with a clear error
    for _ in gen:
        pass
    if classes is None:
        classes = resolve_classes(dataset, recipe)
    out.recipe = recipe.replace(lesion_classes=classes) if classes else recipe
    out.bank = bank if with_bank else None
    return out
