"""Any cohort size from one case up: defaults work, and what cannot be done is said per case.

Also: a run whose cases equal their sources says so, with the likely cause.
"""

from __future__ import annotations

import json

from napari_lesionmix.batch.manifest import Manifest
from napari_lesionmix.batch.options import GenerateOptions
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.batch.verify import verify_output
from napari_lesionmix.core.recipe import Recipe
from tests.batch.helpers import make_nnunet


def run(inp, out, n, recipe=None, tmp=None):
    said = []
    path = None
    if recipe is not None:
        path = tmp / f"recipe_{len(list(tmp.glob('recipe_*')))}.json"
        recipe.to_json(path)
    s = generate(GenerateOptions(inp, out, n, recipe=path, workers=1, progress=False),
                 say=said.append)
    return s, said


def test_one_case_dataset_with_the_default_recipe(tmp_path):
    ds = make_nnunet(tmp_path / "one", n_cases=1, zero_load=False)
    s, said = run(ds, tmp_path / "out", 3)
    assert s.exit_code == 0 and s.written == 3 and not s.failed
    # 'real' over one reference load: each target is the case's own load, nothing to do
    assert s.unchanged == s.names
    note = next(m for m in said if m.startswith("note: 3 of 3"))
    assert "equal their source" in note and "one value" in note and "'uniform'" in note
    assert "equal to their source" in s.line()
    m = Manifest.load(tmp_path / "out" / "manifest.json")
    assert m.data["unchanged"] == s.names and m.data["notes"] == s.notes
    assert all(e["unchanged"] for e in m.written().values())


def test_one_case_dataset_populates_with_the_default_floor(tmp_path):
    """The map of one case is its own lesions; the default floor leaves room elsewhere."""
    ds = make_nnunet(tmp_path / "one", n_cases=1, zero_load=False)
    start = json.loads(json.dumps(Recipe().to_dict()))
    assert start["likelihood"]["floor"] > 0
    s, said = run(ds, tmp_path / "out", 3, Recipe(load_distribution="fixed",
                                                   load={"value": 900.0}), tmp_path)
    assert s.exit_code == 0 and s.written == 3 and s.unchanged == []
    written = Manifest.load(tmp_path / "out" / "manifest.json").written()
    assert all(e["achieved_load_mm3"] > e["start_load_mm3"] for e in written.values())
    assert not any("equal their source" in m for m in said)
    assert verify_output(tmp_path / "out")[1] == []


def test_what_cannot_be_done_is_reported_per_case_not_raised(tmp_path):
    """Without the floor, the one-case map leaves nowhere to go: each case fails, by name,
    in the manifest, the summary and the messages; the run itself completes."""
    ds = make_nnunet(tmp_path / "one", n_cases=1, zero_load=False)
    recipe = Recipe(load_distribution="fixed", load={"value": 900.0},
                    likelihood={"floor": 0.0})
    s, said = run(ds, tmp_path / "out", 2, recipe, tmp_path)
    assert s.exit_code == 1 and [f["case"] for f in s.failed] == ["sub00_lmix0000",
                                                                 "sub00_lmix0001"]
    assert all("LikelihoodError" in f["error"] and "floor" in f["error"] for f in s.failed)
    assert sum(m.strip().startswith("failed sub00_lmix") for m in said) == 2
    m = Manifest.load(tmp_path / "out" / "manifest.json")
    assert {e["status"] for e in m.cases.values()} == {"failed"}
    assert m.data["state"] == "incomplete" and "2 failed" in s.line()
    assert verify_output(tmp_path / "out")[1] == []


def test_no_lesion_anywhere_is_not_an_input_error(tmp_path):
    ds = make_nnunet(tmp_path / "none", n_cases=1, zero_load=True)
    s, said = run(ds, tmp_path / "a", 2)
    assert s.exit_code == 0 and s.unchanged == s.names
    assert any("lesion bank is empty" in m for m in said)
    s, said = run(ds, tmp_path / "b", 1, Recipe(load_distribution="fixed",
                                                 load={"value": 300.0}), tmp_path)
    assert s.exit_code == 1 and "lesion bank is empty" in s.failed[0]["error"]


def test_an_organ_counted_as_a_lesion_is_named_as_the_cause(tmp_path):
    ds = make_nnunet(tmp_path / "liver", n_cases=3, organ=True, channels=1)
    s, said = run(ds, tmp_path / "out", 3)
    assert s.exit_code == 0 and s.unchanged == s.names
    early = [m for m in said if m.startswith("note: label 1 ('liver')")]
    assert early and "organ_label" in early[0]
    note = s.notes[0]
    assert "'liver'" in note and '"organ_label": 1' in note and '"lesion_classes": [2]' in note
    # with the organ label set, the same input is synthesised
    s, _ = run(ds, tmp_path / "fixed", 3, Recipe(organ_label=1, load_distribution="uniform",
                                                  load={"lo": 50.0, "hi": 400.0}), tmp_path)
    assert s.exit_code == 0 and s.unchanged == []
