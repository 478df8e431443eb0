"""The recipe: defaults, JSON round trip, and errors that name the bad field."""

import json

import pytest

from napari_lesionmix.core.recipe import Recipe, RecipeError


def test_defaults_are_the_spec_values():
    r = Recipe()
    p = r.populate
    assert (p.flip_p, p.rotate_p, tuple(p.rotate_deg)) == (0.5, 0.5, (1.0, 89.0))
    assert tuple(p.scale) == (0.5, 1.8) and tuple(p.elastic_sigma) == (3.0, 7.0)
    assert tuple(p.brightness) == (0.9, 1.1) and tuple(p.noise_std) == (0.0, 0.1)
    assert (p.min_inside, p.min_gap, p.max_tries, p.blend, p.blend_sigma) == (1.0, 1, 50, "soft", 1.0)
    assert (r.inpaint.method, r.inpaint.dilate, r.inpaint.texture) == ("slices", 1, True)
    assert (r.min_voxels, r.connectivity, r.tolerance, r.max_operations) == (3, "full", 0.05, 200)


def test_json_round_trip_through_a_file(tmp_path):
    r = Recipe(lesion_classes=[2], organ_label=1, load_distribution="uniform",
               load={"lo": 10, "hi": 500}, seed=42, populate={"scale": [0.8, 1.2]})
    path = tmp_path / "recipe.json"
    r.to_json(path)
    back = Recipe.from_json(path)
    assert back == r
    assert back.hash() == r.hash()
    data = json.loads(path.read_text())
    assert set(data) >= {"lesion_classes", "organ_label", "load_distribution", "load",
                         "min_voxels", "connectivity", "populate", "inpaint", "likelihood",
                         "tolerance", "max_operations", "seed"}


def test_missing_fields_take_defaults():
    r = Recipe.from_dict({"populate": {"flip_p": 0.1}})
    assert r.populate.flip_p == 0.1 and r.populate.rotate_p == 0.5


def test_hash_ignores_seed_but_not_options():
    assert Recipe(seed=1).hash() == Recipe(seed=2).hash()
    assert Recipe().hash() != Recipe(tolerance=0.1).hash()


def test_online_section_defaults_and_hash():
    r = Recipe()
    assert (r.online.p, r.online.direction) == (0.5, "both")
    # a recipe written before the section existed loads, and keeps its hash
    old = {k: v for k, v in r.to_dict().items() if k != "online"}
    assert Recipe.from_dict(old) == r
    assert Recipe.from_dict(old).hash() == r.hash()
    changed = Recipe(online={"p": 1.0, "direction": "populate"})
    assert changed.online.p == 1.0 and changed.online.direction == "populate"
    assert changed.hash() != r.hash()
    assert Recipe.from_json(changed.to_json()) == changed


@pytest.mark.parametrize("data, field", [
    ({"colour": 1}, "colour"),
    ({"populate": {"flip": 0.5}}, "populate.flip"),
    ({"populate": {"flip_p": 1.5}}, "populate.flip_p"),
    ({"populate": {"scale": [2.0, 1.0]}}, "populate.scale"),
    ({"populate": {"rotate_deg": [1]}}, "populate.rotate_deg"),
    ({"inpaint": {"method": "magic"}}, "inpaint.method"),
    ({"load_distribution": "bimodal"}, "load_distribution"),
    ({"load_distribution": "fixed"}, "load.value"),
    ({"load_distribution": "uniform", "load": {"lo": 5, "hi": 1}}, "load.lo"),
    ({"load": {"mean": 3}}, "load.mean"),
    ({"lesion_classes": [0]}, "lesion_classes[0]"),
    ({"lesion_classes": [1], "organ_label": 1}, "organ_label"),
    ({"min_voxels": 2.5}, "min_voxels"),
    ({"tolerance": -0.1}, "tolerance"),
    ({"likelihood": {"floor": 2}}, "likelihood.floor"),
    ({"online": {"p": 1.5}}, "online.p"),
    ({"online": {"direction": "inpaint"}}, "online.direction"),
    ({"online": {"prob": 0.5}}, "online.prob"),
    ({"inpaint": {"texture": "yes"}}, "inpaint.texture"),
])
def test_bad_values_name_the_field(data, field):
    with pytest.raises(RecipeError, match=field.replace("[", r"\[").replace("]", r"\]")):
        Recipe.from_dict(data)


def test_bad_file_names_the_file(tmp_path):
    bad = tmp_path / "mine.json"
    bad.write_text('{"seed": 1,,}')
    with pytest.raises(RecipeError, match="mine.json.*not valid JSON"):
        Recipe.from_json(bad)
    bad.write_text('{"sed": 1}')
    with pytest.raises(RecipeError, match="mine.json: sed: unknown field"):
        Recipe.from_json(bad)
    with pytest.raises(RecipeError, match="absent.json"):
        Recipe.from_json(tmp_path / "absent.json")


def test_one_table_of_bounds_and_choices_every_user_reads():
    from napari_lesionmix.core import blend, load, recipe, transforms

    assert blend.BLEND_MODES == recipe.CHOICES["populate.blend"]
    assert set(transforms._ORDERS) == set(recipe.CHOICES["populate.interpolation"])
    assert recipe.LOAD_DISTRIBUTIONS == recipe.CHOICES["load_distribution"]
    with pytest.raises(load.LoadError, match="unknown"):
        load.LoadDistribution("bimodal", {}, [1.0])
    # every number field of the recipe has bounds, and the default lies within them
    d = Recipe().to_dict()
    for name, (lo, hi) in recipe.BOUNDS.items():
        section, _, field = name.rpartition(".")
        if section == "load" or name in ("lesion_classes", "organ_label"):
            continue
        value = (d[section] if section else d)[field]
        for v in (value if isinstance(value, list) else [value]):
            assert lo <= v <= hi, name
    # a bound in the table is the bound the validation enforces
    lo, hi = recipe.BOUNDS["populate.blend_sigma"]
    Recipe.from_dict({"populate": {"blend_sigma": hi}})
    with pytest.raises(RecipeError, match=r"populate.blend_sigma.*\[0.0, 20.0\]"):
        Recipe.from_dict({"populate": {"blend_sigma": hi + 1}})
