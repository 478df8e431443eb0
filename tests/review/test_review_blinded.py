"""The blinded real-or-synthetic test: trials, answers, score."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy.stats import binomtest

from napari_lesionmix.core.image_io import read_image
from napari_lesionmix.review.blinded import BlindedSession, trial_planes
from napari_lesionmix.review.index import ReviewDataset


@pytest.fixture(scope="module")
def review(export_ro, tmp_path_factory):
    """A copy of the export (sessions are written into its qa/ folder)."""
    copy = shutil.copytree(export_ro, tmp_path_factory.mktemp("blinded") / export_ro.name)
    return ReviewDataset.open(copy)


def test_trials_are_balanced_shuffled_and_seeded(review, tmp_path, monkeypatch):
    a = BlindedSession.new(review, "alice", n=20, seed=3)
    assert len(a.trials) == 20
    assert sorted(t.truth for t in a.trials).count("real") == 10
    truths = [t.truth for t in a.trials]
    assert truths != sorted(truths) and truths != sorted(truths, reverse=True)
    assert len({t.id for t in a.trials}) == 20
    b = BlindedSession.new(review, "bob", n=20, seed=3)
    assert [(t.case, t.centroid) for t in a.trials] == [(t.case, t.centroid) for t in b.trials]
    c = BlindedSession.new(review, "carol", n=20, seed=4)
    assert [(t.case, t.centroid) for t in a.trials] != [(t.case, t.centroid) for t in c.trials]
    assert a.path.parent == review.root / "qa" / "blinded"


def test_trials_point_at_real_and_synthesised_lesions(review):
    s = BlindedSession.new(review, "alice", n=16, seed=1)
    for t in s.trials:
        row = review.row(t.case)
        labels, _, _ = read_image(row.label_path)
        c = np.rint(t.centroid).astype(int)
        near = labels[tuple(slice(max(v - 2, 0), v + 3) for v in c)]
        assert near.any(), t  # a lesion within 2 voxels of the centre
        if t.truth == "real":
            assert row.kind == "original"
        else:
            assert row.kind == "synthesised"
            case = review.load(t.case)
            ops = [o for o in case.provenance.accepted if o.kind == "populate"]
            assert any(list(o.center) == t.centroid for o in ops)


def test_size_matching_makes_sizes_comparable(review):
    def gap(session):
        real = sorted(np.log(t.volume_mm3) for t in session.trials if t.truth == "real")
        syn = sorted(np.log(t.volume_mm3) for t in session.trials if t.truth == "synthetic")
        return abs(np.median(real) - np.median(syn))

    matched = [gap(BlindedSession.new(review, "m", n=12, seed=s)) for s in range(4)]
    unmatched = [gap(BlindedSession.new(review, "u", n=12, seed=s, match_size=False))
                 for s in range(4)]
    assert np.mean(matched) < np.mean(unmatched)


def test_answers_persist_and_are_scored_with_an_exact_interval(review):
    s = BlindedSession.new(review, "alice", n=20, seed=7)
    assert s.score().n == 0 and s.score().verdict() == "no answers yet"
    for t in s.trials:  # a rater who always says "synthetic": right on half
        s.answer(t.id, "synthetic")
    again = BlindedSession.load(s.path)
    assert again.answered == 20 and again.next_trial() is None
    sc = again.score()
    assert (sc.n, sc.correct, sc.accuracy) == (20, 10, 0.5)
    ci = binomtest(10, 20).proportion_ci(0.95, method="exact")
    assert (sc.ci_low, sc.ci_high) == pytest.approx((ci.low, ci.high))
    assert sc.ci_low < 0.5 < sc.ci_high and "could not tell" in sc.verdict()
    assert sc.synthetic_found == (10, 10) and sc.real_found == (0, 10)
    for t in again.trials:  # a perfect rater
        again.answer(t.id, t.truth)
    sc = BlindedSession.load(s.path).score()
    assert sc.accuracy == 1.0 and sc.ci_low > 0.8 and "can tell" in sc.verdict()


def test_answer_is_checked(review):
    s = BlindedSession.new(review, "alice", n=4, seed=0)
    with pytest.raises(ValueError, match="real.*synthetic"):
        s.answer(s.trials[0].id, "dunno")
    with pytest.raises(ValueError, match="no trial"):
        s.answer("nope", "real")
    with pytest.raises(ValueError, match="at least 2"):
        BlindedSession.new(review, "alice", n=1)


def test_every_trial_shows_the_same_field_of_view(review):
    s = BlindedSession.new(review, "alice", n=8, seed=2)
    shapes = set()
    for t in s.trials:
        out = trial_planes(t)
        assert set(out["planes"]) == {"axial", "coronal", "sagittal"}
        for pic in out["planes"].values():
            shapes.add(pic.shape)
            centre = pic[pic.shape[0] // 2, pic.shape[1] // 2]
            assert np.isfinite(centre)
    assert len(shapes) == 1  # real and synthesised trials look alike in size


def test_a_dataset_without_synthesised_lesions_says_so(tmp_path):
    from tests.review.review_helpers import BRAIN

    plain = ReviewDataset.open(shutil.copytree(BRAIN, tmp_path / "plain"))
    with pytest.raises(ValueError, match="no synthesised lesion"):
        BlindedSession.new(plain, "alice", n=10)
