"""Item 11: numbers that come from outside are checked before they are used.

A provenance sidecar is a file anyone can edit: ``replay`` must refuse a version it does
not know and parameters no recipe could have drawn (NaN, a scale of 1000), and write only
inside ``-o``. ``synthesize`` refuses a target load that is not a finite load (NaN used
to end "reached").
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from napari_lesionmix.cli import main
from napari_lesionmix.core.lesions import LesionBank
from napari_lesionmix.core.mix import synthesize
from napari_lesionmix.core.recipe import Recipe
from napari_lesionmix.core.transforms import LesionParams
from tests.batch.helpers import make_nnunet
from tests.conftest import blob_case


@pytest.mark.parametrize("target", [math.nan, math.inf, -5.0])
def test_target_load_must_be_a_finite_load(target):
    case = blob_case(n_lesions=2, seed=1)
    bank = LesionBank.from_recipe([case], Recipe())
    with pytest.raises(ValueError, match="target"):
        synthesize(case, bank, None, Recipe(), seed=0, target_load=target)


@pytest.mark.parametrize("field,value", [("scale", float("nan")), ("scale", 1000.0),
                                         ("brightness", -1.0), ("noise_std", 1e9),
                                         ("elastic_magnitude", 1e6), ("rotate", [1e300, 0, 0])])
def test_lesion_params_outside_every_recipe_are_refused(field, value):
    d = LesionParams.identity(3).to_dict()
    d[field] = value
    with pytest.raises(ValueError, match=field):
        LesionParams.from_dict(d)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rp")
    inp = make_nnunet(root / "in", n_cases=2, shape=(8, 16, 16), channels=1)
    out = root / "out"
    recipe = root / "r.json"
    Recipe(load_distribution="fixed", load={"value": 400.0}).to_json(recipe)
    assert main(["generate", str(inp), str(out), "--n", "2", "--workers", "1",
                 "--no-progress", "--recipe", str(recipe)]) == 0
    provs = sorted((out / "provenance").iterdir())
    prov = next(p for p in provs
                if any(o["accepted"] and o["kind"] == "populate"
                       for o in json.loads(p.read_text())["operations"]))
    return prov


def _edited(run, tmp_path, edit):
    d = json.loads(run.read_text())
    edit(d)
    p = tmp_path / run.name
    p.write_text(json.dumps(d))
    return p


def _first_populate(d):
    return next(o for o in d["operations"] if o["accepted"] and o["kind"] == "populate")


@pytest.mark.parametrize("edit,word", [
    (lambda d: d.update(version=99), "version"),
    (lambda d: _first_populate(d)["params"].update(scale=float("nan")), "scale"),
    (lambda d: _first_populate(d)["params"].update(scale=1000.0), "scale"),
    (lambda d: _first_populate(d).update(center=[1e9, 0, 0]), "center"),
    (lambda d: _first_populate(d).update(center=[float("nan"), 0, 0]), "center"),
    (lambda d: d["operations"].append({"kind": "explode", "accepted": True}), "kind"),
])
def test_replay_refuses_what_no_run_wrote(run, tmp_path, capsys, edit, word):
    p = _edited(run, tmp_path, edit)
    assert main(["replay", str(p), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert word in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.nii.gz"))


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".hidden", ""])
def test_replay_name_stays_inside_the_output(run, tmp_path, capsys, name):
    dest = tmp_path / "o"
    assert main(["replay", str(run), "-o", str(dest), "--name", name]) == 2
    assert "--name" in capsys.readouterr().err
    assert not any(tmp_path.rglob("x*.nii.gz"))


def test_replay_still_rebuilds_a_sound_sidecar(run, tmp_path):
    assert main(["replay", str(run), "-o", str(tmp_path / "o")]) == 0
    name = run.name[:-5]
    from napari_lesionmix.core.image_io import read_image
    a = read_image(tmp_path / "o" / "labelsTr" / f"{name}.nii.gz")[0]
    b = read_image(run.parent.parent / "labelsTr" / f"{name}.nii.gz")[0]
    assert np.array_equal(a, b)
