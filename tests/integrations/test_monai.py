"""LesionMix as a MONAI dictionary transform: reproducible with 0, 1, 2 and 4 workers,
workers never repeating each other's draws, MetaTensor affines and metadata kept."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from monai.data import DataLoader, Dataset, MetaTensor  # noqa: E402
from monai.transforms import Compose, LoadImaged  # noqa: E402
from monai.utils import set_determinism  # noqa: E402

from napari_lesionmix.core.case import Case  # noqa: E402
from napari_lesionmix.integrations.affine import geometry_from_affine, to_engine  # noqa: E402
from napari_lesionmix.integrations.monai import RandLesionMixd  # noqa: E402
from tests.integrations.conftest import BRAIN, CASES, oblique_copy  # noqa: E402


def items(root=BRAIN, names=CASES):
    return [{"image": str(root / "imagesTr" / f"{n}_0000.nii.gz"),
             "label": str(root / "labelsTr" / f"{n}.nii.gz")} for n in names]


def pipeline(prepared, **kw):
    return Compose([LoadImaged(["image", "label"], ensure_channel_first=True),
                    RandLesionMixd(["image"], "label", prepared, summary_key="lesionmix", **kw)])


def run(prepared, seed, workers, data=None):
    set_determinism(seed)
    loader = DataLoader(Dataset(data or items(), pipeline(prepared, prob=1.0)), batch_size=2,
                        num_workers=workers)
    return [(b["image"].as_tensor().clone(), b["label"].as_tensor().clone(),
             b["lesionmix"]["added"] + b["lesionmix"]["removed"]) for b in loader]


def same(a, b) -> bool:
    return all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b))


@pytest.mark.slow
def test_two_workers_reproducible_and_seeded(brain_prepared):
    first, again, other = (run(brain_prepared, s, 2) for s in (0, 0, 1))
    assert len(first) == 3 and same(first, again) and not same(first, other)
    assert sum(int((x[2] > 0).sum()) for x in first) >= 5  # lesions were added or removed
    # no worker changes the input files' arrays
    plain = LoadImaged(["image", "label"], ensure_channel_first=True)(items()[0])
    assert not torch.equal(first[0][1][0], plain["label"].as_tensor()) or first[0][2][0] == 0


@pytest.mark.slow
def test_zero_one_and_four_workers(brain_prepared):
    # in the main process and in one worker MONAI seeds the transform the same way
    assert same(run(brain_prepared, 0, 0), run(brain_prepared, 0, 1))
    # four workers: reproducible, and eight copies of one case all come out different
    eight = items(names=["brain04"] * 8)
    a, b = run(brain_prepared, 5, 4, eight), run(brain_prepared, 5, 4, eight)
    assert same(a, b)
    labels = [x[1][i] for x in a for i in range(2)]
    assert len({lab.numpy().tobytes() for lab in labels}) == 8


def test_set_random_state_metadata_and_units(brain_prepared):
    data = LoadImaged(["image", "label"], ensure_channel_first=True)(items(names=["brain05"])[0])
    t = RandLesionMixd(["image"], "label", brain_prepared, prob=1.0, summary_key="s")
    a = t.set_random_state(seed=7)(data)
    b = t.set_random_state(seed=7)(data)
    c = t.set_random_state(seed=8)(data)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert not torch.equal(a["label"], c["label"])
    assert a["s"]["applied"] and a["s"]["added"] + a["s"]["removed"] > 0
    for key in ("image", "label"):
        assert isinstance(a[key], MetaTensor) and a[key].dtype == data[key].dtype
        assert torch.equal(a[key].affine, data[key].affine)
        assert a[key].meta["filename_or_obj"] == data[key].meta["filename_or_obj"]
    img, ref = a["image"].as_tensor().numpy(), data["image"].as_tensor().numpy()
    fg = ref > 0
    assert abs(img[fg].mean() - ref[fg].mean()) < 0.03 * ref[fg].mean()
    off = RandLesionMixd(["image"], "label", brain_prepared, prob=0.0, summary_key="s")(data)
    assert not off["s"]["applied"] and torch.equal(off["label"], data["label"])


def test_affines_ras_and_lps_give_the_file_geometry(tmp_path):
    root = oblique_copy(tmp_path / "raw", names=("brain01",))
    truth = Case.read([root / "imagesTr" / "brain01_0000.nii.gz"], root / "labelsTr" / "brain01.nii.gz")
    d = LoadImaged(["image"], ensure_channel_first=True)(items(root, ["brain01"])[0])
    ras = d["image"].affine.numpy()
    assert str(d["image"].meta.get("space", "RAS")) == "RAS"
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ras  # the same affine as an LPS reader gives it
    for affine, space in ((ras, "RAS"), (lps, "LPS")):
        g = geometry_from_affine(affine, space)
        assert np.allclose(g.spacing, truth.geometry.spacing, atol=1e-6), space
        assert np.allclose(g.origin, truth.geometry.origin, atol=1e-4), space
        assert np.allclose(g.direction, truth.geometry.direction, atol=1e-6), space
    assert np.array_equal(to_engine(d["image"].as_tensor().numpy())[0], truth.channels[0])
    # an LPS MetaTensor goes through the transform with its metadata
    lab = LoadImaged(["label"], ensure_channel_first=True)(items(root, ["brain01"])[0])["label"]
    meta = dict(lab.meta, space="LPS", affine=torch.as_tensor(lps))
    img = MetaTensor(d["image"].as_tensor(), meta=dict(d["image"].meta, space="LPS",
                                                         affine=torch.as_tensor(lps)))
    out = RandLesionMixd(["image"], "label", prepared_of(root, tmp_path), prob=1.0)(
        {"image": img, "label": MetaTensor(lab.as_tensor(), meta=meta)})
    assert torch.equal(out["label"].affine, torch.as_tensor(lps))
    assert out["label"].meta["space"] == "LPS"


def prepared_of(root, tmp_path):
    from napari_lesionmix.batch.dataset import open_dataset
    from napari_lesionmix.core.recipe import Recipe
    from napari_lesionmix.integrations.prepared import write_prepared
    return write_prepared(open_dataset(root), Recipe.from_json(BRAIN / "lesionmix_recipe.json"),
                          tmp_path / "prep").folder
