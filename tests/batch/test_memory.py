"""The plugin's Export without a display: the run over cases held in memory.

The napari dock builds a :class:`MemorySource` from its layers and calls the same
``generate`` as ``lesionmix generate``; these tests drive that run directly.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from napari_lesionmix.batch.manifest import Manifest
from napari_lesionmix.batch.memory import MemorySource
from napari_lesionmix.batch.options import GenerateOptions, RunError
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.batch.tasks import Shared, synthesize_one
from napari_lesionmix.batch.verify import verify_output
from napari_lesionmix.core.case import Case
from napari_lesionmix.core.image_io import read_image
from napari_lesionmix.core.lesions import LesionBank, lesion_load
from napari_lesionmix.core.likelihood import LikelihoodMap
from napari_lesionmix.core.recipe import Recipe
from tests.batch.helpers import make_nnunet


def _one_case_dataset(tmp_path) -> tuple[Path, Case]:
    root = make_nnunet(tmp_path / "ds", n_cases=1, channels=2, zero_load=False)
    case = Case.read(sorted((root / "imagesTr").glob("*.nii.gz")),
                     root / "labelsTr" / "sub00.nii.gz", name="sub00")
    return root, case


def _memory_source(case: Case, recipe: Recipe) -> MemorySource:
    """What the dock builds: the case with its own bank, map and load as reference."""
    recipe = recipe.replace(lesion_classes=[1])
    bank = LesionBank.from_recipe([case], recipe)
    lmap = LikelihoodMap.from_recipe([case], recipe)
    load = lesion_load(case.labels, [1], case.geometry.spacing_zyx)[0]
    return MemorySource.from_case(case, bank=bank, lmap=lmap, reference_loads=[load])


def _files(out: Path) -> dict:
    return {p.relative_to(out).as_posix(): read_image(p)[0]
            for d in ("imagesTr", "labelsTr") for p in sorted((out / d).glob("*.nii.gz"))}


def _run(source, out, n, recipe, **kw):
    return generate(GenerateOptions(source, out, n, recipe=recipe, progress=False, **kw),
                    say=kw.pop("say", lambda m: None))


def test_memory_export_equals_the_command_line_bit_for_bit(tmp_path):
    root, case = _one_case_dataset(tmp_path)
    recipe = Recipe(load_distribution="uniform", load={"lo": 100.0, "hi": 400.0}, seed=3,
                    likelihood={"sigma_mm": 1.0, "floor": 0.05})
    gui = _run(_memory_source(case, recipe), tmp_path / "gui", 3, recipe)
    cli = _run(root, tmp_path / "cli", 3, recipe)
    assert gui.exit_code == cli.exit_code == 0 and gui.written == cli.written == 3
    a, b = _files(tmp_path / "gui"), _files(tmp_path / "cli")
    assert a.keys() == b.keys() and len(a) == 4 * 3  # originals too: 2 channels + label
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for name in gui.names:
        pa = json.loads((tmp_path / "gui" / "provenance" / f"{name}.json").read_text())
        pb = json.loads((tmp_path / "cli" / "provenance" / f"{name}.json").read_text())
        assert pa["operations"] == pb["operations"] and pa["seed"] == pb["seed"]
    ma, mb = (Manifest.load(tmp_path / d / "manifest.json") for d in ("gui", "cli"))
    assert ma.data["plan"]["input_layout"] == "memory" and mb.data["plan"]["input_layout"] == "nnunet"
    assert ma.data["executor"].startswith("this process")
    # "Synthesise one" (output k of n, in memory) is the same case again
    src = _memory_source(case, recipe)
    shared = Shared(recipe.replace(lesion_classes=[1]), src.bank, src.lmap, src.reference_loads)
    one = synthesize_one(case, shared, 2, 3)
    assert one.case.name == gui.names[2]
    np.testing.assert_array_equal(one.case.labels, a[f"labelsTr/{gui.names[2]}.nii.gz"])
    assert verify_output(tmp_path / "gui")[1] == []


def test_abort_flag_leaves_only_complete_cases_and_a_consistent_manifest(tmp_path):
    _, case = _one_case_dataset(tmp_path)
    recipe = Recipe(load_distribution="uniform", load={"lo": 100.0, "hi": 400.0})
    stop = threading.Event()
    seen = []

    def on_result(res):
        seen.append(res.name)
        if len(seen) == 2:  # the user presses Cancel while case 1 is being recorded:
            stop.set()      # case 2 is in progress (its write in the background)

    out = tmp_path / "out"
    s = generate(GenerateOptions(_memory_source(case, recipe), out, 5, recipe=recipe,
                                 progress=False), say=lambda m: None, abort=stop,
                 on_result=on_result)
    assert s.interrupted and s.exit_code == 130 and s.state == "interrupted"
    assert len(seen) == 3  # the case in progress completed; cases 3 and 4 never started
    m = Manifest.load(out / "manifest.json")
    assert m.data["state"] == "interrupted" and sorted(m.written()) == sorted(seen) == s.names
    on_disk = sorted(p.name for p in (out / "labelsTr").iterdir())
    assert on_disk == sorted(["sub00.nii.gz"] + [f"{n}.nii.gz" for n in seen])
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 4
    assert [p for p in out.rglob("*") if ".tmp" in p.name] == []
    assert verify_output(out)[1] == []


def test_temporaries_are_written_in_the_work_folder_only(tmp_path, monkeypatch):
    import napari_lesionmix.core.io_utils as io_utils

    root, case = _one_case_dataset(tmp_path)
    folders = []
    real = io_utils.tempfile.mkstemp

    def spy(*args, **kw):
        folders.append(Path(kw["dir"]))
        return real(*args, **kw)

    monkeypatch.setattr(io_utils.tempfile, "mkstemp", spy)
    recipe = Recipe(load_distribution="uniform", load={"lo": 100.0, "hi": 400.0})
    for out, source in ((tmp_path / "disk", root),
                        (tmp_path / "memory", _memory_source(case, recipe))):
        folders.clear()
        assert _run(source, out, 2, recipe, compression=1).exit_code == 0
        assert folders and set(folders) == {out / ".lesionmix" / "tmp"}, set(folders)


def test_memory_export_refuses_an_output_with_files_and_writes_nothing(tmp_path):
    _, case = _one_case_dataset(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("x")
    with pytest.raises(RunError, match="already holds files"):
        _run(_memory_source(case, Recipe()), out, 2, Recipe())
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_labels_outside_the_declared_ones_are_a_bad_case(tmp_path):
    _, case = _one_case_dataset(tmp_path)
    case.labels[0, 0, 0] = 5
    source = MemorySource.from_case(case)
    source.labels = {"background": 0, "lesion": 1}
    with pytest.raises(RunError, match="1 bad input case"):
        _run(source, tmp_path / "out", 1, Recipe())
    assert not (tmp_path / "out").exists()
