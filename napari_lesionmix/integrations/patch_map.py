"""The likelihood map of one training patch, with a sampling table that costs little to
build.

The engine's :meth:`LikelihoodMap.sampler_for` lists every voxel where a lesion may go
and sums the map over them, one running total per voxel: right for a case whose map is
used for many operations, but on a patch of nnU-Net's (a few million voxels, its map used
for the few lesions it gets) that table is the largest cost of a sample outside the
lesions themselves. :class:`PatchMap` samples the same distribution in two steps instead:
a block of :data:`BLOCK` voxels by its share of the map (one sum per block), then a voxel
within the block by the block's running total, built at the draw.
"""

from __future__ import annotations

import numpy as np

from ..core.likelihood import LikelihoodMap

__all__ = ["BLOCK", "BlockSampler", "PatchMap"]

BLOCK = 4096  #: voxels per block of the two-step draw


class BlockSampler:
    """Draws voxels with probability proportional to ``weights`` (one uniform draw each).

    Parameters
    ----------
    weights : ndarray of float32
        Non-negative, on the patch's grid (zero where a lesion may not go).

    Attributes
    ----------
    mass : float
        Total weight (0 means nowhere to go).

    Examples
    --------
    >>> w = np.zeros((4, 5, 6), np.float32); w[1, 2, 3] = 1.0
    >>> BlockSampler(w).sample(np.random.default_rng(0))
    (1, 2, 3)
    """

    def __init__(self, weights: np.ndarray):
        self.shape = weights.shape
        self.weights = np.ascontiguousarray(weights, np.float32).ravel()
        starts = np.arange(0, self.weights.size, BLOCK)
        sums = (np.add.reduceat(self.weights, starts, dtype=np.float64) if starts.size
                else np.zeros(0))
        self.cdf = np.cumsum(sums)
        self.mass = float(self.cdf[-1]) if self.cdf.size else 0.0

    def sample(self, rng: np.random.Generator) -> tuple | None:
        """One voxel index of the patch."""
        if self.mass <= 0:
            return None
        u = rng.random() * self.mass
        b = min(int(np.searchsorted(self.cdf, u, side="right")), self.cdf.size - 1)
        while b > 0 and self.cdf[b] == self.cdf[b - 1]:  # an empty block (rounding at its end)
            b -= 1
        block = self.weights[b * BLOCK:(b + 1) * BLOCK]
        inner = np.cumsum(block, dtype=np.float64)
        rest = u - (self.cdf[b - 1] if b else 0.0)
        k = min(int(np.searchsorted(inner, rest, side="right")), block.size - 1)
        if block[k] <= 0:  # past the block's last voxel by rounding: its last voxel with weight
            k = int(np.flatnonzero(block)[-1])
        return tuple(int(i) for i in np.unravel_index(b * BLOCK + k, self.shape))


class PatchMap(LikelihoodMap):
    """A :class:`LikelihoodMap` on a training patch's own grid, sampled by blocks."""

    def sampler_for(self, geometry, shape, allowed=None, occupied=None):
        if allowed is None or not self.on_grid(geometry, shape):
            return super().sampler_for(geometry, shape, allowed, occupied)
        where = allowed if occupied is None else allowed & ~occupied
        return BlockSampler(np.where(where, self.prob, np.float32(0)))
