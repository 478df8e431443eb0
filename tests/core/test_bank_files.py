"""The bank folder: flat arrays mapped read-only, the same lesions and the same cases."""

import json

import numpy as np
import pytest

from napari_lesionmix.core.bank_files import (
    BANK_INDEX,
    is_bank_folder,
    load_bank_folder,
    save_bank_folder,
)
from napari_lesionmix.core.case import Case
from napari_lesionmix.core.lesions import BankError, LesionBank
from napari_lesionmix.core.likelihood import LikelihoodMap
from napari_lesionmix.core.mix import synthesize
from napari_lesionmix.core.recipe import Recipe
from napari_lesionmix.sample_data import sample_dir


def _mapped(arr) -> bool:
    while arr is not None:
        if isinstance(arr, np.memmap):
            return True
        arr = arr.base
    return False


@pytest.fixture(scope="module")
def brain():
    root = sample_dir("brain_mr")
    cases = [Case.read([root / "imagesTr" / f"brain0{i}_0000.nii.gz"],
                       root / "labelsTr" / f"brain0{i}.nii.gz", name=f"brain0{i}")
             for i in (1, 2, 3)]
    recipe = Recipe.from_json(root / "lesionmix_recipe.json")
    bank = LesionBank.from_recipe(cases, recipe)
    return cases, recipe, bank


def test_folder_round_trip_maps_the_same_patches(brain, tmp_path):
    cases, recipe, bank = brain
    folder = save_bank_folder(bank, tmp_path / "bank")
    assert is_bank_folder(folder) and not is_bank_folder(tmp_path)
    back = load_bank_folder(folder)
    assert len(back) == len(bank) and back.case_loads == bank.case_loads
    assert (back.connectivity, back.margin, back.min_voxels) == (
        bank.connectivity, bank.margin, bank.min_voxels)
    for a, b in zip(bank.entries, back.entries):
        assert a.key == b.key and a.source == b.source
        for name in ("image", "mask", "context", "stats", "spacing_zyx"):
            x, y = getattr(a, name), getattr(b, name)
            assert x.dtype == y.dtype and np.array_equal(x, y)
        # patches are read-only views of the mapped files, not copies
        assert _mapped(b.image) and _mapped(b.mask) and not b.image.flags.writeable
        assert np.array_equal(a.level, b.level) and a.level.dtype == b.level.dtype
        for x, y in zip(a.appearance, b.appearance):
            assert x.dtype == y.dtype and np.array_equal(x, y)
    # LesionBank.load opens a folder too; mmap=False reads it into memory
    assert len(LesionBank.load(folder)) == len(bank)
    assert not _mapped(load_bank_folder(folder, mmap=False)[0].image)


def test_synthesis_with_a_mapped_bank_equals_the_bank_in_memory(brain, tmp_path):
    cases, recipe, bank = brain
    mapped = load_bank_folder(save_bank_folder(bank, tmp_path / "bank"))
    lmap = LikelihoodMap.from_recipe(cases, recipe)
    for seed in range(6):
        a = synthesize(cases[0], bank, lmap, recipe, seed=seed)
        b = synthesize(cases[0], mapped, lmap, recipe, seed=seed)
        assert np.array_equal(a.case.channels, b.case.channels)
        assert np.array_equal(a.case.labels, b.case.labels)
        assert a.provenance.to_dict() == b.provenance.to_dict()


def test_refuses_to_overwrite_and_names_a_broken_folder(brain, tmp_path):
    _, _, bank = brain
    folder = save_bank_folder(bank, tmp_path / "bank")
    with pytest.raises(FileExistsError):
        save_bank_folder(bank, folder)
    save_bank_folder(bank, folder, overwrite=True)
    header = json.loads((folder / BANK_INDEX).read_text())
    header["entries"][-1]["image_offset"] = 10**9
    (folder / BANK_INDEX).write_text(json.dumps(header))
    with pytest.raises(BankError, match="bank.*shorter than its index"):
        load_bank_folder(folder)
    (folder / BANK_INDEX).unlink()
    with pytest.raises(BankError, match=str(folder)):
        load_bank_folder(folder)


def test_an_index_nested_too_deeply_is_refused_naming_the_folder(tmp_path):
    """A 100,000-deep index.json is a BankError naming the folder, not a RecursionError."""
    from napari_lesionmix.core.bank_files import BANK_INDEX, load_bank_folder
    from napari_lesionmix.core.lesions import BankError

    (tmp_path / BANK_INDEX).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BankError, match="not a readable lesion bank folder"):
        load_bank_folder(tmp_path)
