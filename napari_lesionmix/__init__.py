"""napari-lesionmix: LesionMix lesion-level data augmentation, as a napari plugin and a
batch engine that share one core.

Examples
--------
>>> from napari_lesionmix import Case, Recipe, LesionBank, LikelihoodMap, synthesize
>>> cases = [Case.read(["sub01_t1.nii.gz"], "sub01_seg.nii.gz")]       # doctest: +SKIP
>>> bank = LesionBank.from_cases(cases, lesion_classes=[1])            # doctest: +SKIP
>>> lmap = LikelihoodMap.from_cases(cases, sigma_mm=2.0)               # doctest: +SKIP
>>> out = synthesize(cases[0], bank, lmap, Recipe(load_distribution="high"), seed=7)  # doctest: +SKIP
>>> summary = generate(GenerateOptions("Dataset001_MS", "Dataset501_MSLMix", n=100))  # doctest: +SKIP
"""

__version__ = "0.1.0"

from .batch.memory import MemorySource
from .batch.options import GenerateOptions, RunError, RunSummary
from .batch.runner import generate
from .batch.splits import grouped_splits, install_splits
from .batch.verify import verify_output
from .core.case import Case
from .core.edits import CaseContext, Edit, inpaint_edit, populate_edit
from .core.errors import CaseError
from .core.geometry import Geometry
from .core.image_io import read_image, write_image
from .core.lesions import BankEntry, BankError, Lesion, LesionBank, find_lesions, lesion_load
from .core.likelihood import LikelihoodError, LikelihoodMap
from .core.load import LoadDistribution, LoadError
from .core.mix import SynthResult, case_seeds, replay, replay_from_files, synthesize
from .core.provenance import Provenance
from .core.recipe import Recipe, RecipeError
from .core.transforms import LesionParams, augment, sample_params

__all__ = [
    "BankEntry", "BankError", "Case", "CaseContext", "CaseError", "Edit", "GenerateOptions",
    "Geometry", "Lesion", "LesionBank", "LesionParams", "LikelihoodError", "LikelihoodMap",
    "LoadDistribution", "LoadError", "MemorySource", "Provenance", "Recipe", "RecipeError",
    "RunError", "RunSummary", "SynthResult", "augment", "case_seeds", "find_lesions",
    "generate", "grouped_splits", "inpaint_edit", "install_splits", "lesion_load",
    "populate_edit", "read_image", "replay", "replay_from_files", "sample_params",
    "synthesize", "verify_output", "write_image",
]
