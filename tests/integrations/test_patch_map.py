"""The patch map's two-step draw: the engine's distribution, at a fraction of its table's
cost (the cost is in benchmarks/bench_online.py)."""

from __future__ import annotations

import numpy as np

from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.likelihood import LikelihoodMap
from napari_lesionmix.integrations.patch_map import BLOCK, BlockSampler, PatchMap

GRID = Geometry((1.0, 1.2, 2.0), (3.0, -4.0, 5.0), tuple(np.eye(3).ravel()))


def test_same_voxels_as_the_engines_sampler_and_never_a_forbidden_one():
    rng = np.random.default_rng(1)
    shape = (37, 41, 29)  # not a multiple of the block
    prob = rng.random(shape).astype(np.float32) ** 3
    prob[prob < 0.05] = 0
    allowed = np.zeros(shape, bool)
    allowed[4:33, 5:38, 2:27] = True
    occupied = np.zeros(shape, bool)
    occupied[10:20, 10:20, 10:20] = True
    engine = LikelihoodMap(prob, GRID).sampler_for(GRID, shape, allowed, occupied)
    patch = PatchMap(prob, GRID).sampler_for(GRID, shape, allowed, occupied)
    assert isinstance(patch, BlockSampler)
    assert abs(patch.mass / engine.mass - 1) < 1e-12
    r1, r2 = np.random.default_rng(7), np.random.default_rng(7)
    draws = [patch.sample(r1) for _ in range(3000)]
    assert draws == [engine.sample(r2) for _ in range(3000)]
    idx = tuple(np.array(draws).T)
    assert allowed[idx].all() and not occupied[idx].any() and (prob[idx] > 0).all()


def test_frequencies_follow_the_weights_across_block_edges():
    w = np.zeros((3, BLOCK), np.float32)  # weight on the first and last voxel of blocks
    spots = [(0, 0), (0, BLOCK - 1), (1, BLOCK - 1), (2, 0), (2, 7)]
    weights = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    for s, v in zip(spots, weights):
        w[s] = v
    sampler = BlockSampler(w)
    assert sampler.mass == weights.sum()
    rng = np.random.default_rng(0)
    n = 20000
    draws = [sampler.sample(rng) for _ in range(n)]
    counts = np.array([draws.count(s) for s in spots])
    assert counts.sum() == n  # nothing drawn where the weight is 0
    expected = n * weights / weights.sum()
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


def test_nowhere_to_go_and_another_grid():
    shape = (8, 9, 10)
    prob = np.ones(shape, np.float32)
    none = PatchMap(prob, GRID).sampler_for(GRID, shape, np.zeros(shape, bool))
    assert none.mass == 0 and none.sample(np.random.default_rng(0)) is None
    other = Geometry((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    # off its own grid the map is sampled as the engine does (through physical space)
    assert not isinstance(PatchMap(prob, GRID).sampler_for(other, shape, np.ones(shape, bool)),
                          BlockSampler)
