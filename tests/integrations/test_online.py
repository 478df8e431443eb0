"""The torch-free core of training-time LesionMix: the prepared folder (``lesionmix
prepare``), and one sample through the engine (whole case, patch, populate only)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from napari_lesionmix.batch.dataset import open_dataset
from napari_lesionmix.cli import main
from napari_lesionmix.core.case import Case
from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.lesions import LesionBank
from napari_lesionmix.core.likelihood import LikelihoodMap
from napari_lesionmix.core.recipe import Recipe
from napari_lesionmix.integrations.online import OnlineLesionMix, Sample
from napari_lesionmix.integrations.prepared import (
    PreparedData,
    PrepareError,
    write_prepared,
)
from tests.integrations.conftest import BRAIN, CASES, copy_sample


def read(name: str) -> Case:
    return Case.read([BRAIN / "imagesTr" / f"{name}_0000.nii.gz"],
                     BRAIN / "labelsTr" / f"{name}.nii.gz", name=name)


def test_prepare_command_writes_a_folder_workers_can_share(tmp_path, capsys):
    out = tmp_path / "prep"
    assert main(["prepare", str(BRAIN), str(out), "--case-maps"]) == 0
    assert f"{len(PreparedData.open(out).bank)} lesion(s)" in capsys.readouterr().out
    data = PreparedData.open(out)
    cases = [read(n) for n in CASES]
    recipe = Recipe.from_json(BRAIN / "lesionmix_recipe.json")
    bank = LesionBank.from_recipe(cases, recipe)
    assert len(data.bank) == len(bank) and sorted(data.cases) == CASES
    assert data.reference == pytest.approx([bank.case_loads[n] for n in CASES])
    assert data.recipe.lesion_classes == [1] and data.channels == 1
    for name, case in zip(CASES, cases):
        rec = data.cases[name]
        assert np.allclose(rec["stats"], case.intensity_stats())
        assert rec["allowed_voxels"] == int(case.foreground().sum())
        assert Geometry.from_dict(rec["geometry"]).matches(case.geometry)
        on_grid = data.lmap.for_case(case).prob
        assert np.array_equal(data.case_map(name), on_grid)
    # a folder pickles as its path: workers map the bank themselves
    blob = pickle.dumps(data)
    assert len(blob) < 20000
    again = pickle.loads(blob)
    assert again._bank is None and len(again.bank) == len(bank)
    # nothing is overwritten without --overwrite; a bad input writes nothing
    assert main(["prepare", str(BRAIN), str(out)]) == 2
    assert "already holds a prepared folder" in capsys.readouterr().err
    assert main(["prepare", str(BRAIN), str(out), "--overwrite"]) == 0
    assert not (out / "maps").exists()  # the new folder has no case maps
    bad = copy_sample(tmp_path / "bad")
    (bad / "labelsTr" / "brain03.nii.gz").write_bytes(b"not a nifti")
    assert main(["prepare", str(bad), str(tmp_path / "p2")]) == 2
    assert "brain03" in capsys.readouterr().err and not (tmp_path / "p2").exists()
    assert main(["prepare", str(bad), str(tmp_path / "p2"), "--skip-bad"]) == 0
    assert "brain03" not in PreparedData.open(tmp_path / "p2").cases
    with pytest.raises(PrepareError, match="not a prepared folder"):
        PreparedData.open(tmp_path)


def test_one_sample_same_seed_same_result_and_units(brain_prepared):
    mix = OnlineLesionMix(brain_prepared)
    case = read("brain04")
    sample = Sample(case.channels, case.labels, case.geometry, "brain04")
    a, b = mix.apply(sample, 21), mix.apply(sample, 21)
    assert np.array_equal(a.channels, b.channels) and np.array_equal(a.labels, b.labels)
    assert a.provenance.to_dict() == b.provenance.to_dict()
    assert np.array_equal(case.channels, read("brain04").channels)  # input untouched
    r = mix.replay(sample, a.provenance.to_dict())
    assert np.array_equal(r.channels, a.channels) and np.array_equal(r.labels, a.labels)
    seen = {mix.apply(sample, s).labels.tobytes() for s in range(4)}
    assert len(seen) >= 3
    # pickles small and gives the same result in another process's copy
    copy = pickle.loads(pickle.dumps(mix))
    assert np.array_equal(copy.apply(sample, 21).channels, a.channels)


def test_populate_only_never_removes(brain_prepared):
    mix = OnlineLesionMix(brain_prepared, PreparedData.open(brain_prepared).recipe.replace(
        online={"p": 1.0, "direction": "populate"}))
    case = read("brain05")  # the largest load: most drawn targets lie below it
    sample = Sample(case.channels, case.labels, case.geometry, "brain05")
    notes = 0
    for s in range(8):
        out = mix.apply(sample, s)
        if out.provenance is None:
            notes += "populate only" in out.note
            assert np.array_equal(out.labels, case.labels)
        else:
            assert all(o.kind == "populate" for o in out.provenance.operations)
            assert (out.labels >= case.labels).all()
    assert notes >= 1


def test_a_patch_reads_the_case_map_stats_and_share(tmp_path):
    """A patch of a prepared case (nnU-Net's use): its map is the case map's window, its
    statistics the whole case's, its target scaled by its share of the case's tissue, and
    labels -1 (outside) stay -1."""
    data = write_prepared(open_dataset(BRAIN), Recipe.from_json(BRAIN / "lesionmix_recipe.json")
                          .replace(load_distribution="fixed", load={"value": 8000.0}),
                          tmp_path / "prep", case_maps=True)
    mix = OnlineLesionMix(data)
    case = read("brain02")
    lo = np.array([20, 30, 25])
    size = np.array([48, 56, 48])
    box = tuple(slice(a, a + n) for a, n in zip(lo, size))
    labels = case.labels[box].astype(np.int16)
    labels[:, :, :3] = -1  # nnU-Net's outside-the-non-zero-region (and padding)
    labels[case.channels[0][box] == 0] = -1
    g = case.geometry
    origin = g.index_to_physical(lo.astype(float))
    geom = Geometry(g.spacing, tuple(origin), g.direction)
    sample = Sample(case.channels[(slice(None),) + box], labels, geom, "brain02", tuple(lo))
    out = mix.apply(sample, 5)
    prov = out.provenance
    share = np.count_nonzero(labels >= 0) / data.cases["brain02"]["allowed_voxels"]
    assert prov.target_load_mm3 == pytest.approx(8000.0 * share, rel=1e-6)
    channels, new_labels = out.whole(sample)
    assert (new_labels == -1).sum() == (labels == -1).sum() and (new_labels[labels == -1] == -1).all()
    assert np.array_equal(channels[:, :, :, :3], sample.channels[:, :, :, :3])
    # the engine worked on the box of the patch that holds tissue, with the case map's window
    inner = tuple(slice(b.start + a, b.stop + a) for b, a in zip(out.box, lo))
    tissue = Sample(channels[(slice(None),) + out.box], new_labels[out.box], geom, "brain02",
                    tuple(s.start for s in inner))
    win = mix._map_for(mix._case(tissue)[0], tissue, True)
    assert np.array_equal(win.prob, LikelihoodMap(data.case_map("brain02")[inner], geom).prob)
    assert prov.accepted
    # the whole case's statistics, not the patch's
    ctx_stats = np.asarray(data.cases["brain02"]["stats"])
    assert not np.allclose(ctx_stats, Case(sample.channels, np.zeros(labels.shape, np.uint8),
                                           geom).intensity_stats())
    r = mix.replay(sample, prov)
    assert np.array_equal(r.channels, out.channels) and np.array_equal(r.labels, out.labels)
    assert r.box == out.box


def test_channel_count_must_match_the_bank(brain_prepared):
    mix = OnlineLesionMix(brain_prepared)
    case = read("brain01")
    two = np.concatenate([case.channels, case.channels])
    with pytest.raises(ValueError, match="2 image channel"):
        mix.apply(Sample(two, case.labels, case.geometry, "brain01"), 0)


def test_prepared_json_is_plain(brain_prepared):
    header = json.loads((brain_prepared / "prepared.json").read_text())
    assert header["lesions"] == len(PreparedData.open(brain_prepared).bank)
    assert set(header["cases"]) == set(CASES)
