"""LesionMix as a TorchIO transform: reproducible in a multi-worker loader, the subject's
affine and intensity units kept, the history replays, and no inverse."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tio = pytest.importorskip("torchio")

from napari_lesionmix.core.case import Case  # noqa: E402
from napari_lesionmix.core.likelihood import LikelihoodMap  # noqa: E402
from napari_lesionmix.integrations.affine import geometry_from_affine, to_engine  # noqa: E402
from napari_lesionmix.integrations.prepared import PreparedData  # noqa: E402
from napari_lesionmix.integrations.torchio import LesionMix, RandomLesionMix  # noqa: E402
from tests.integrations.conftest import BRAIN, CASES, oblique_copy  # noqa: E402


def subjects(root=BRAIN, names=CASES):
    return [tio.Subject(t1=tio.ScalarImage(root / "imagesTr" / f"{n}_0000.nii.gz"),
                        seg=tio.LabelMap(root / "labelsTr" / f"{n}.nii.gz"))
            for n in names]


def run_loader(prepared, seed: int) -> list:
    torch.manual_seed(seed)
    dataset = tio.SubjectsDataset(subjects(), transform=RandomLesionMix(prepared, p=1.0))
    loader = tio.SubjectsLoader(dataset, batch_size=2, num_workers=2)
    return [(b["t1"][tio.DATA].clone(), b["seg"][tio.DATA].clone()) for b in loader]


@pytest.mark.slow
def test_two_worker_loader_is_reproducible_and_seeded(brain_prepared):
    first = run_loader(brain_prepared, 0)
    again = run_loader(brain_prepared, 0)
    other = run_loader(brain_prepared, 1)
    assert len(first) == 3
    for (a, sa), (b, sb) in zip(first, again):
        assert torch.equal(a, b) and torch.equal(sa, sb)
    assert any(not torch.equal(sa, sb) for (_, sa), (_, sb) in zip(first, other))
    # the samples were changed (p = 1), and workers did not repeat each other's draws
    plain = [(s.t1.data, s.seg.data) for s in subjects()]
    segs = [s[i] for _, s in first for i in range(2)]
    assert sum(not torch.equal(s, p[1]) for s, p in zip(segs, plain)) >= 5


def test_history_replays_and_lesionmix_has_no_inverse(brain_prepared):
    torch.manual_seed(3)
    subject = subjects(names=["brain02"])[0]
    out = tio.Compose([RandomLesionMix(brain_prepared, p=1.0), tio.RandomFlip(axes=(0,),
                                                                              flip_probability=1)])(subject)
    assert [name for name, _ in out.applied_transforms] == ["LesionMix", "Flip"]
    args = out.applied_transforms[0][1]
    prov = args["provenance"]
    assert isinstance(args["seed"], int) and prov["source"]["case"] == "brain02"
    assert len([o for o in prov["operations"] if o["accepted"]]) > 0
    json.dumps(args)  # the history is plain data
    subject.load()
    replayed = out.get_composed_history()(subject)
    assert torch.equal(replayed.t1.data, out.t1.data) and torch.equal(replayed.seg.data, out.seg.data)
    # the seed alone gives the same subject again (the search is deterministic)
    rerun = LesionMix(**{**args, "provenance": None})(subject)
    assert torch.equal(rerun.t1.data, tio.Flip(axes=(0,))(out).t1.data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inverse = out.get_inverse_transform()
    assert any("Skipping LesionMix as it is not invertible" in str(w.message) for w in caught)
    assert [t.name for t in inverse.transforms] == ["Flip"]


def test_probability_and_seed_from_torch(brain_prepared):
    subject = subjects(names=["brain03"])[0]
    off = RandomLesionMix(brain_prepared, p=0.0)(subject)
    assert off.applied_transforms == [] and torch.equal(off.seg.data, subject.seg.data)
    # p defaults to the recipe's online.p
    assert RandomLesionMix(brain_prepared).probability == PreparedData.open(brain_prepared).recipe.online.p
    torch.manual_seed(11)
    a = RandomLesionMix(brain_prepared, p=1.0)(subject)
    torch.manual_seed(11)
    b = RandomLesionMix(brain_prepared, p=1.0)(subject)
    assert torch.equal(a.t1.data, b.t1.data)
    assert a.applied_transforms[0][1]["seed"] == b.applied_transforms[0][1]["seed"]


def test_oblique_flipped_affine_units_and_placement(tmp_path):
    """A flipped, oblique header: the engine sees the file's own geometry, lesions go
    where the map (read in physical space) allows, the affine is kept exactly and the
    image stays in its units after two insertions."""
    from napari_lesionmix.batch.dataset import open_dataset
    from napari_lesionmix.core.recipe import Recipe
    from napari_lesionmix.integrations.prepared import write_prepared

    recipe = Recipe.from_json(BRAIN / "lesionmix_recipe.json").replace(
        load_distribution="fixed", load={"value": 6000.0},
        likelihood={"sigma_mm": 4.0, "floor": 0.0, "align": "none"},
        online={"p": 1.0, "direction": "populate"})
    root = oblique_copy(tmp_path / "raw", names=("brain01",))
    prep = write_prepared(open_dataset(root), recipe, tmp_path / "prep")
    # keep the map on one side of the head only (physical x of the LPS frame > centre)
    lmap = LikelihoodMap.load(prep.folder / "likelihood.nii.gz")
    idx = np.indices(lmap.shape).reshape(3, -1).T
    x = lmap.geometry.index_to_physical(idx)[:, 0].reshape(lmap.shape)
    centre = float(np.median(x[lmap.prob > 0]))
    half = np.where(x > centre, lmap.prob, 0).astype(np.float32)
    LikelihoodMap(half, lmap.geometry).save(prep.folder / "likelihood.nii.gz", overwrite=True)

    truth = Case.read([root / "imagesTr" / "brain01_0000.nii.gz"], root / "labelsTr" / "brain01.nii.gz")
    subject = subjects(root, ["brain01"])[0]
    geom = geometry_from_affine(subject.t1.affine)
    assert np.allclose(geom.spacing, truth.geometry.spacing, atol=1e-9)
    assert np.allclose(geom.origin, truth.geometry.origin, atol=1e-6)
    assert np.allclose(geom.direction, truth.geometry.direction, atol=1e-6)
    assert np.array_equal(to_engine(subject.t1.data.numpy())[0], truth.channels[0])

    torch.manual_seed(0)
    more = recipe.replace(load={"value": 12000.0})  # a second insertion on top of the first
    twice = tio.Compose([RandomLesionMix(prep), RandomLesionMix(prep, recipe=more)])
    out = twice(subject)
    assert np.array_equal(out.t1.affine, subject.t1.affine)
    assert np.array_equal(out.seg.affine, subject.seg.affine)
    centres = []
    for _, args in out.applied_transforms:
        ops = [o for o in args["provenance"]["operations"] if o["accepted"]]
        assert ops and all(o["kind"] == "populate" for o in ops)
        centres += [o["center"] for o in ops]
    pts = truth.geometry.index_to_physical(np.array(centres, float))
    assert (pts[:, 0] > centre).all(), pts[:, 0] - centre
    # the image stays in its units: same dtype, same foreground statistics within 3 %
    before = subject.t1.data.numpy().astype(float)
    after = out.t1.data.numpy().astype(float)
    assert out.t1.data.dtype == subject.t1.data.dtype
    fg = before > 0
    assert abs(after[fg].mean() - before[fg].mean()) < 0.03 * before[fg].mean()
    assert abs(after[fg].std() - before[fg].std()) < 0.03 * before[fg].std()
    assert after.max() <= 1.05 * before.max() and after.min() >= before.min()
    added = out.seg.data.numpy() > subject.seg.data.numpy()
    assert added.sum() > 0
    assert abs(after[added].mean() - before[(subject.seg.data.numpy() == 1)].mean()) < \
        0.5 * before[fg].std()
