"""LesionMix on one training sample: arrays in, arrays out, one seed per sample.

The TorchIO, MONAI and nnU-Net integrations turn their sample into a :class:`Sample`
(channels, labels, geometry, and what is known of the case it comes from), draw one seed
from their framework's random generator, and call :meth:`OnlineLesionMix.apply`, which runs
the engine's :func:`~napari_lesionmix.core.mix.synthesize` with the prepared bank, map and
reference loads and the recipe: the same engine and the same recipe as ``lesionmix
generate``, so a recipe tuned offline means the same thing on the fly.

Per sample, ``SeedSequence(seed)`` is split in two: one stream draws the target load, the
other is the synthesis's own stream. The recipe's ``online`` section decides how often a
sample is changed (``p``, drawn by the integration) and whether lesions may be removed.

A sample may be a patch of a prepared case (nnU-Net's): its target load is scaled by the
share of the case's allowed region it holds, its intensity statistics are the whole
case's (given by the integration), and it reads the map on the case's grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.case import Case
from ..core.geometry import Geometry
from ..core.image_io import label_dtype
from ..core.lesions import bounding_box, placement_region
from ..core.likelihood import LikelihoodError, LikelihoodMap
from ..core.load import LoadDistribution
from ..core.mix import replay, synthesize
from ..core.provenance import Provenance
from ..core.recipe import Recipe
from .patch_map import PatchMap
from .prepared import PreparedData

__all__ = ["OnlineLesionMix", "Outcome", "Sample"]


@dataclass
class Sample:
    """One training sample, in the engine's terms.

    Attributes
    ----------
    channels : ndarray (C, *spatial)
        Image channels in array order (any real dtype; a view is fine, it is not changed).
    labels : ndarray (*spatial), integer
        Label map. Negative values (nnU-Net's -1, outside the image's non-zero region)
        are kept as they are and mark where lesions may not go.
    geometry : Geometry
        Index → physical (ITK's LPS) of this sample's grid.
    name : str, optional
        The case it comes from, when the prepared folder may know it.
    offset : tuple of int, optional
        Corner of this sample in the named case's own grid (voxels), when it is a patch
        of that case on the same grid (negative where it was padded).
    stats : ndarray (C, 2), optional
        Intensity statistics of the whole case (default: the prepared case's when the
        sample is a patch of it, else measured on the sample).
    """

    channels: np.ndarray
    labels: np.ndarray
    geometry: Geometry
    name: str | None = None
    offset: tuple | None = None
    stats: np.ndarray | None = None


@dataclass
class Outcome:
    """What :meth:`OnlineLesionMix.apply` made of a sample.

    ``channels`` are float32 in the sample's own intensity units; ``labels`` have the
    sample's dtype (negative values kept). ``provenance`` is None when nothing was tried,
    with ``note`` saying why. When ``box`` is set, the sample had labels < 0 around its
    tissue and ``channels``/``labels`` cover that box of it only, in the sample's grid
    (indices of the provenance too); :meth:`whole` gives the whole sample.
    """

    channels: np.ndarray
    labels: np.ndarray
    provenance: Provenance | None
    note: str = ""
    box: tuple | None = None

    def whole(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        """Channels and labels of the whole sample (when the engine worked on ``box``,
        the part of the sample holding tissue, they are pasted into a copy of it)."""
        if self.box is None:
            return self.channels, self.labels
        ch = np.array(sample.channels, np.float32)
        ch = ch[None] if ch.ndim == np.asarray(sample.labels).ndim else ch
        labels = np.array(sample.labels)
        ch[(slice(None),) + self.box] = self.channels
        labels[self.box] = self.labels
        return ch, labels

    @property
    def added(self) -> int:
        """Lesions added."""
        return 0 if self.provenance is None else sum(
            1 for o in self.provenance.accepted if o.kind == "populate")

    @property
    def removed(self) -> int:
        """Lesions removed."""
        return 0 if self.provenance is None else sum(
            1 for o in self.provenance.accepted if o.kind == "inpaint")


class OnlineLesionMix:
    """LesionMix for training samples, over a prepared bank, map and reference loads.

    Parameters
    ----------
    prepared : PreparedData or path-like
        A folder written by ``lesionmix prepare`` (or :func:`write_prepared`), or
        :meth:`PreparedData.from_objects`.
    recipe : Recipe, optional
        Default: the prepared folder's recipe. Its lesion classes must be the bank's.

    Pickles small when built from a folder: each process maps the bank on first use.
    """

    def __init__(self, prepared, recipe: Recipe | None = None):
        if isinstance(prepared, (str, Path)):
            prepared = PreparedData.open(prepared)
        self.prepared: PreparedData = prepared
        self.recipe = recipe if recipe is not None else prepared.recipe
        self._physical: LikelihoodMap | None = None

    @property
    def p(self) -> float:
        """The recipe's ``online.p``: probability that a sample is changed."""
        return float(self.recipe.online.p)

    @property
    def ndim(self) -> int:
        """2 or 3: the lesion bank's (3 when the bank is empty)."""
        bank = self.prepared.bank
        return int(bank[0].mask.ndim) if len(bank) else 3

    def __getstate__(self):
        return {"prepared": self.prepared, "recipe": self.recipe, "_physical": None}

    # ------------------------------------------------------------------ one sample
    def apply(self, sample: Sample, seed) -> Outcome:
        """LesionMix on ``sample`` with its own seed (int or ``numpy.random.SeedSequence``).

        The sample's arrays are not changed. The same sample and seed give the same
        result bit for bit, in any process.
        """
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
        return self._over_tissue(sample, lambda sub: self._apply(sub, ss))

    def replay(self, sample: Sample, provenance) -> Outcome:
        """Apply the accepted operations of an earlier :meth:`apply` (its provenance, a
        :class:`Provenance` or its dict) to the same sample again: no random draw, the same
        arrays bit for bit."""
        prov = provenance if isinstance(provenance, Provenance) else Provenance.from_dict(provenance)

        def run(sub: Sample) -> Outcome:
            case, outside = self._case(sub)
            out = replay(prov, case, self.prepared.bank, stats=self._stats(sub))
            return Outcome(out.channels, self._labels_back(out.labels, sub, outside), prov)

        return self._over_tissue(sample, run)

    def _apply(self, sample: Sample, ss: np.random.SeedSequence) -> Outcome:
        ss_target, ss_ops = ss.spawn(2)
        data = self.prepared
        case, outside = self._case(sample)
        known = sample.name is not None and sample.name in data.cases
        target = self._target(case, sample, ss_target, known)
        classes = self.recipe.lesion_classes or data.bank.classes()
        voxels = sum(int(np.count_nonzero(case.labels == c)) for c in classes)
        load = voxels * float(case.geometry.voxel_volume)
        if self.recipe.online.direction == "populate" and load >= target * (1 - self.recipe.tolerance):
            return Outcome(case.channels, sample.labels, None,
                           f"populate only: the sample's load {load:.1f} mm3 is at or above "
                           f"its target {target:.1f} mm3")
        lmap = self._map_for(case, sample, known)
        out = synthesize(case, data.bank, lmap, self.recipe, seed=ss_ops, target_load=target,
                         name=case.name, stats=self._stats(sample))
        return Outcome(out.case.channels, self._labels_back(out.case.labels, sample, outside),
                       out.provenance)

    def _stats(self, sample: Sample) -> np.ndarray | None:
        """The sample's own, else the whole case's for a patch of a prepared case, else
        None (measured on the sample)."""
        if sample.stats is not None:
            return sample.stats
        if sample.offset is not None and sample.name in self.prepared.cases:
            return np.asarray(self.prepared.cases[sample.name]["stats"], np.float64)
        return None

    @staticmethod
    def _labels_back(labels: np.ndarray, sample: Sample, outside) -> np.ndarray:
        """Engine labels in the sample's dtype, its negative values put back."""
        labels = labels.astype(np.asarray(sample.labels).dtype, copy=False)
        if outside is not None:
            np.copyto(labels, sample.labels, where=outside)
        return labels

    def _over_tissue(self, sample: Sample, run) -> Outcome:
        """Run ``run`` on the part of ``sample`` that holds tissue: the box around its
        non-negative labels when it has negative ones (nnU-Net's padding and the image's
        zero region), so the engine's passes over the volume skip what can never change."""
        lab = np.asarray(sample.labels)
        if lab.dtype.kind != "i" or not lab.size or lab.min() >= 0:
            return run(sample)
        box = bounding_box(lab >= 0)
        if box is None:
            return Outcome(np.asarray(sample.channels, np.float32), lab, None,
                           "no voxel of the sample lies inside the image (all labels negative)")
        if all(s.stop - s.start == n for s, n in zip(box, lab.shape)):
            return run(sample)
        lo = np.array([s.start for s in box], float)
        g = sample.geometry
        geometry = type(g)(g.spacing, tuple(g.index_to_physical(lo)), g.direction)
        offset = None if sample.offset is None else tuple(
            int(o) + int(s.start) for o, s in zip(sample.offset, box))
        ch = np.asarray(sample.channels)
        ch = ch[None] if ch.ndim == lab.ndim else ch
        out = run(Sample(ch[(slice(None),) + box], lab[box], geometry, sample.name, offset,
                         sample.stats))
        out.box = box
        return out

    def _case(self, sample: Sample) -> tuple[Case, np.ndarray | None]:
        """The sample as a Case (its channels as float32, no copy when they already are)."""
        ch = np.asarray(sample.channels)
        if ch.ndim == np.asarray(sample.labels).ndim:
            ch = ch[None]
        ch = ch.astype(np.float32, copy=False)
        if self.prepared.channels is not None and ch.shape[0] != self.prepared.channels:
            raise ValueError(f"sample {sample.name or ''}: {ch.shape[0]} image channel(s), but the "
                             f"lesion bank was built from {self.prepared.channels}")
        lab = np.asarray(sample.labels)
        if lab.shape != ch.shape[1:]:
            raise ValueError(f"sample {sample.name or ''}: labels of shape {lab.shape} do not "
                             f"match the images' {ch.shape[1:]}")
        top = int(lab.max()) if lab.size else 0
        dtype = label_dtype(max(top, 0, *(self.recipe.lesion_classes or [0])))
        outside = None
        if lab.dtype.kind == "i" and lab.size and lab.min() < 0:
            outside = lab < 0
            # negative values to 0, in the engine's dtype, in one pass
            lab = np.maximum(lab, 0, out=np.empty(lab.shape, dtype), casting="unsafe")
        else:
            lab = lab.astype(dtype, copy=False)
        # nnU-Net's -1 marks what lies outside the image's non-zero region: lesions stay
        # out of it (an organ label, when the recipe names one, bounds placement anyway)
        placement = ~outside if outside is not None and self.recipe.organ_label is None else None
        case = Case(ch, lab, sample.geometry, name=sample.name or "sample", placement=placement,
                    image_dtypes=["float32"] * ch.shape[0])
        return case, outside

    def _target(self, case: Case, sample: Sample, ss, known: bool) -> float:
        """The sample's target load: drawn from the recipe's distribution over the
        reference loads, times the share of the case's allowed region the sample holds
        when it is a part of a prepared case."""
        rng = np.random.default_rng(ss)
        refs = self.prepared.reference
        target = LoadDistribution.from_recipe(self.recipe, refs).sample(rng)
        if known:
            rec = self.prepared.cases[sample.name]
            if tuple(rec["shape"]) != case.spatial_shape:
                mine = np.count_nonzero(placement_region(case, self.recipe.organ_label))
                whole = rec["allowed_voxels"] * rec["voxel_volume"]
                share = mine * float(case.geometry.voxel_volume) / whole if whole > 0 else 1.0
                target *= min(1.0, share)
        return float(target)

    def _map_for(self, case: Case, sample: Sample, known: bool) -> LikelihoodMap | None:
        """The likelihood map for this sample.

        A patch of a case with its map written on its grid: a slice of that map. A
        prepared case: the map through the case's alignment found when it was prepared.
        Any other sample: the map through physical coordinates (no registration on the
        fly).
        """
        data = self.prepared
        if data.lmap is None:
            return None
        if known:
            whole = data.case_map(sample.name)
            if whole is not None:
                offset = sample.offset or (0,) * case.ndim
                prob = _window(whole, offset, case.spatial_shape)
                try:
                    return PatchMap(prob, case.geometry)
                except LikelihoodError:  # no mass in this window: uniform over it
                    return None
            return data.lmap
        if self._physical is None:  # the same map, without the alignment of named cases
            self._physical = LikelihoodMap(data.lmap.prob, data.lmap.geometry)
        return self._physical


def _window(array: np.ndarray, corner, shape) -> np.ndarray:
    """``array[corner : corner + shape]``, zero where the window leaves the array."""
    out = np.zeros(tuple(shape), np.float32)
    src, dst = [], []
    for c, n, size in zip(corner, shape, array.shape):
        a, b = max(int(c), 0), min(int(c) + int(n), size)
        if a >= b:
            return out
        src.append(slice(a, b))
        dst.append(slice(a - int(c), b - int(c)))
    out[tuple(dst)] = array[tuple(src)]
    return out
