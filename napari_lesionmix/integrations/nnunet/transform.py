"""LesionMix inside nnU-Net's data loading: a batchgeneratorsv2 transform and the data
loader that tells it where each patch comes from.

Where it runs (and why). nnU-Net's ``nnUNetDataLoader`` loads a preprocessed case, cuts a
patch larger than the network's (room for rotation and scaling) with nnU-Net's foreground
oversampling, and passes the patch and its segmentation through the training transforms
one sample at a time; only then does ``SpatialTransform`` rotate, scale and crop it to the
final patch size. :class:`LesionMixTransform` is the first of those transforms, so it
works on that larger patch, in preprocessed voxel space and intensities, before any of
nnU-Net's own augmentation: lesions are added and removed where the case really has
tissue, and nnU-Net then augments the result like any other sample. Working on the patch
(not on the whole case) keeps the cost bounded by the patch size and never decompresses a
whole case. A patch alone does not say which case it is or where it lies, so
:class:`LesionMixDataLoader` (nnU-Net's loader, plus two notes) records the case
identifier and the patch's corner for the transform: the likelihood map is then read on
the case's own grid (a slice of the map written for that case), the intensity statistics
are the whole case's, and the target load is scaled by the share of the case's allowed
region the patch holds.

Randomness follows nnU-Net's data loading: numpy's global generator, which nnU-Net's
worker processes seed each on their own (so workers never repeat each other's draws; like
nnU-Net's augmentation it is not reproducible run to run).
"""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader

from ...core.geometry import Geometry
from ..online import OnlineLesionMix, Sample

__all__ = ["Counters", "LesionMixDataLoader", "LesionMixTransform"]

_FIELDS = ("samples", "applied", "added", "removed", "unchanged", "seconds")


class Counters:
    """What the transform did, summed over the data-loader processes (shared memory)."""

    def __init__(self):
        self._values = mp.Array("d", len(_FIELDS))
        self._reported = [0.0] * len(_FIELDS)

    def add(self, **changes) -> None:
        with self._values.get_lock():
            for k, v in changes.items():
                self._values[_FIELDS.index(k)] += v

    def since_last(self) -> dict:
        """The counts since the previous call."""
        with self._values.get_lock():
            now = list(self._values)
        out = {k: now[i] - self._reported[i] for i, k in enumerate(_FIELDS)}
        self._reported = now
        return out


class LesionMixTransform(BasicTransform):
    """LesionMix on one patch of a preprocessed case (``image`` (C, *patch) float,
    ``segmentation`` (1, *patch) with -1 outside the case's non-zero region).

    Parameters
    ----------
    mix : OnlineLesionMix
        Over the fold's prepared folder (maps written on every case's grid).
    counters : Counters, optional
    """

    def __init__(self, mix: OnlineLesionMix, counters: Counters | None = None):
        super().__init__()
        self.mix = mix
        self.counters = counters
        self.where: tuple | None = None  # (case identifier, patch corner), set by the loader

    def apply(self, data_dict: dict, **params) -> dict:
        where, self.where = self.where, None
        t0 = time.perf_counter()
        # numpy's global generator, as nnU-Net's loader: each of its workers seeds its own
        if np.random.uniform() >= self.mix.p or where is None:  # noqa: NPY002
            self._count(t0, samples=1)
            return data_dict
        seed = int(np.random.randint(0, 2**63 - 1, dtype=np.int64))  # noqa: NPY002
        key, corner = where
        image, seg = data_dict["image"], data_dict["segmentation"]
        geometry = self._geometry(key, corner)
        sample = Sample(image.numpy(), seg[0].numpy(), geometry, key, tuple(corner))
        out = self.mix.apply(sample, seed)
        if out.provenance is None or not out.provenance.accepted:
            self._count(t0, samples=1, applied=1, unchanged=1)
            return data_dict
        # only the boxes the accepted operations wrote differ from the patch; the engine
        # worked on the tissue's box (out.box), so theirs are relative to it
        corner = [0] * (seg.ndim - 1) if out.box is None else [s.start for s in out.box]
        for op in out.provenance.accepted:
            sub = tuple(slice(a, b) for a, b in op.box)
            dst = tuple(slice(c + a, c + b) for c, (a, b) in zip(corner, op.box))
            image[(slice(None),) + dst].copy_(torch.from_numpy(out.channels[(slice(None),) + sub]))
            seg[0][dst].copy_(torch.from_numpy(out.labels[sub]))
        self._count(t0, samples=1, applied=1, added=out.added, removed=out.removed)
        return data_dict

    def _geometry(self, key: str, corner) -> Geometry:
        """The patch's grid: the case's, moved to the patch's corner."""
        g = self.mix.prepared.case_geometry(key)
        spacing_zyx = np.asarray(g.spacing[::-1])
        origin_zyx = np.asarray(g.origin[::-1]) + spacing_zyx * np.asarray(corner, float)
        return Geometry(g.spacing, tuple(origin_zyx[::-1]), g.direction)

    def _count(self, t0: float, **changes) -> None:
        if self.counters is not None:
            self.counters.add(seconds=time.perf_counter() - t0, **changes)


class _Recorded:
    """A dataset that remembers the last case it loaded (for the transform)."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.last: str | None = None

    def load_case(self, identifier):
        self.last = identifier
        return self.dataset.load_case(identifier)

    def __getattr__(self, name):
        if name == "dataset":  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.dataset, name)


class LesionMixDataLoader(nnUNetDataLoader):
    """nnU-Net's data loader, telling a :class:`LesionMixTransform` among its transforms
    which case each patch was cut from and where (nothing else changes)."""

    def __init__(self, data, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        self.lesionmix = _find(self.transforms)
        if self.lesionmix is not None:
            self._data = _Recorded(self._data)

    def get_bbox(self, data_shape, force_fg, class_locations, overwrite_class=None,
                 verbose=False):
        lbs, ubs = super().get_bbox(data_shape, force_fg, class_locations, overwrite_class,
                                    verbose)
        if self.lesionmix is not None:
            self.lesionmix.where = (self._data.last, [int(v) for v in lbs])
        return lbs, ubs


def _find(transforms) -> LesionMixTransform | None:
    if isinstance(transforms, LesionMixTransform):
        return transforms
    for t in getattr(transforms, "transforms", None) or []:
        found = _find(t)
        if found is not None:
            return found
    return None
