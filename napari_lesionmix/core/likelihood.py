"""The lesion likelihood map: where lesions are likely, and sampling a location from it.

Brain-style maps sum the binary lesion masks of the training cases; organ-style maps sum
the organ (context) label. Cases on other grids are resampled onto the reference grid
through their physical geometry (nearest neighbour for masks). A floor gives a share of
the sampling mass to the whole allowed region (:func:`with_floor`). The map is stored
normalised to a maximum of 1 as a NIfTI file with its geometry.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from .align import (
    Reference,
    align_case,
    align_path,
    alignment_notices,
    load_alignment_meta,
    load_reference,
    save_alignment,
)
from .geometry import Geometry
from .image_io import read_image, write_image
from .lesions import in_classes, lesion_classes_of, placement_region


class LikelihoodError(ValueError):
    """The map is empty where lesions may go, or a map file is unusable."""


def _to_sitk(array: np.ndarray, geometry: Geometry) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    geometry.apply_to(img)
    return img


def resample_array(array: np.ndarray, source: Geometry, target: Geometry, shape,
                   nearest: bool = False, transform: sitk.Transform | None = None
                   ) -> np.ndarray:
    """Resample ``array`` from one grid onto another through physical coordinates.

    Parameters
    ----------
    array : ndarray
        Data on the ``source`` grid (array order).
    source, target : Geometry
        The grids' geometry.
    shape : tuple of int
        The target grid's array shape.
    nearest : bool
        Nearest neighbour (masks, labels) instead of linear interpolation.
    transform : SimpleITK.Transform, optional
        Maps target points to source points (an alignment); default: the identity.
    """
    if transform is None and source.matches(target) and tuple(array.shape) == tuple(shape):
        return array
    ref = sitk.Image([int(s) for s in shape[::-1]], sitk.sitkUInt8)
    target.apply_to(ref)
    img = _to_sitk(np.ascontiguousarray(array), source)
    interp = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    t = transform if transform is not None else sitk.Transform(len(shape), sitk.sitkIdentity)
    out = sitk.Resample(img, ref, t, interp, 0.0, img.GetPixelID())
    return sitk.GetArrayFromImage(out)


class LikelihoodMap:
    """A likelihood map on a grid, with an O(log n) location sampler (:class:`BlockTable`).

    Parameters
    ----------
    prob : ndarray of float32
        Non-negative values; normalised so that the maximum is 1.
    geometry : Geometry
        The grid's geometry.

    Examples
    --------
    >>> lmap = LikelihoodMap.from_cases(cases, sigma_mm=2.0)      # doctest: +SKIP
    >>> z, y, x = lmap.sample(np.random.default_rng(0))           # doctest: +SKIP
    """

    def __init__(self, prob: np.ndarray, geometry: Geometry, *, own: bool = False):
        prob = np.asarray(prob, np.float32)
        if not np.all(np.isfinite(prob)) or (prob < 0).any():
            raise LikelihoodError("a likelihood map must be finite and non-negative")
        peak = float(prob.max()) if prob.size else 0.0
        if peak <= 0:
            raise LikelihoodError(
                "the likelihood map is zero everywhere lesions are allowed: no training "
                "case has a lesion there; set likelihood.floor > 0 or widen the placement")
        if peak != 1.0:  # ``own``: the array is the map's, normalised where it is
            own = own and prob.flags.writeable
            prob = np.divide(prob, np.float32(peak), out=prob) if own else prob / peak
        self.prob = prob
        self.geometry = geometry
        #: how it was built (classes, organ label, smoothing, floor, align): a case that
        #: cannot be aligned gets a map of its own made the same way
        self.build: dict = {}
        #: the case others were aligned to, and how each was (None: physical space)
        self._reference: Reference | None = None
        self._reference_file: Path | None = None  # a loaded map's, read when first needed
        self.alignment: dict | None = None
        #: what the user should know about the build, e.g. cases that had to be registered
        self.notices: list[str] = []
        self._blocks: BlockTable | None = None

    @property
    def shape(self) -> tuple:
        return self.prob.shape

    @property
    def reference(self) -> Reference | None:
        """The case others were aligned to (None: physical space). A loaded map reads it
        from its alignment file when first asked: only a case the map has no alignment
        for needs it, and it is as large as a case."""
        if self._reference is None and self._reference_file is not None:
            self._reference = load_reference(self._reference_file)
        return self._reference

    @reference.setter
    def reference(self, value: Reference | None) -> None:
        self._reference, self._reference_file = value, None

    # ------------------------------------------------------------------ building
    @classmethod
    def from_cases(cls, cases, lesion_classes=None, organ_label=None, sigma_mm: float = 0.0,
                   floor: float = 0.0, placement: np.ndarray | None = None,
                   reference=None, progress=None, align: str = "auto") -> LikelihoodMap:
        """Sum the lesion masks (or the organ label) of ``cases`` on one grid.

        Parameters
        ----------
        cases : iterable of Case
            Read one at a time: a generator keeps one case in memory.
        lesion_classes : list of int, optional
            Default: every non-zero label but the organ's.
        organ_label : int, optional
            Organ-style map: sum the organ region (organ label and its lesions).
        sigma_mm : float
            Gaussian smoothing in mm.
        floor : float
            Share of the sampling mass spread uniformly over the allowed region (the
            ``placement`` mask if given, else where any case has foreground): 0.05 sends
            5 % of the draws anywhere in it, the rest follow the lesions (see
            :func:`with_floor`). The recipe's default is 0.05.
        placement : ndarray of bool, optional
            Restriction on the reference grid.
        reference : (Geometry, shape), optional
            The grid; default the first case's.
        progress : callable(done, total), optional
        align : {"auto", "register", "none"}
            Put each case into the first case's space before its mask is added
            (:mod:`.align`): ``auto`` (default) registers a case whose foreground (the
            placement mask, else its non-zero voxels) does not overlap the first's in
            physical space (Dice < 0.9), ``register``
            every case, ``none`` none. A case that cannot be aligned (Dice < 0.8 after
            registration) adds nothing and uses its own map (:meth:`for_case`); the map's
            :attr:`notices` say which. Only with the default ``reference`` grid.
        """
        total = len(cases) if hasattr(cases, "__len__") else None
        it = iter(cases)
        first = next(it, None)
        if first is None:
            raise LikelihoodError("no cases to build a likelihood map from")
        ref = None
        if reference is None:
            reference = (first.geometry, first.spatial_shape)
            if align != "none":
                # its first channel as it is (a view) when it is the only one
                image = first.channels[0] if first.n_channels == 1 else first.channels[0].copy()
                ref = Reference(image, first.foreground(), first.geometry)
        alignment: dict = {}
        every, first_name = chain([first], it), first.name
        first = None  # the loop below lets go of each case once it is added

        def items():
            for c in every:
                t = None
                if ref is not None:
                    a = alignment[c.name] = align_case(c.channels[0], c.foreground(),
                                                       c.geometry, ref, align)
                    if a.kind == "own":
                        continue
                    # physical space: no transform, so a case on the map's grid is added
                    # as it is (not resampled onto the same grid through SimpleITK)
                    t = a.transform(c.ndim) if a.kind == "registered" else None
                yield _map_mask(c.labels, lesion_classes, organ_label), c.foreground(), c.geometry, t

        lmap = cls._accumulate(items(), total, reference, sigma_mm, floor, placement, progress)
        lmap.build = {"lesion_classes": lesion_classes, "organ_label": organ_label,
                      "sigma_mm": sigma_mm, "floor": floor, "align": align}
        if ref is not None:
            lmap.reference, lmap.alignment = ref, alignment
            lmap.notices = alignment_notices(alignment, first_name)
        return lmap

    @classmethod
    def from_recipe(cls, cases, recipe, placement=None, progress=None) -> LikelihoodMap:
        """A map with the recipe's classes, organ label, smoothing and floor."""
        return cls.from_cases(cases, recipe.lesion_classes, recipe.organ_label,
                              recipe.likelihood.sigma_mm, recipe.likelihood.floor,
                              placement, progress=progress, align=recipe.likelihood.align)

    @classmethod
    def from_label_files(cls, paths, lesion_classes=None, organ_label=None,
                         sigma_mm: float = 0.0, floor: float = 0.0,
                         placement: np.ndarray | None = None, reference=None,
                         progress=None) -> LikelihoodMap:
        """Build the map from label files alone (a folder of training masks).

        Without images there is no foreground, so the ``floor``'s share is spread over the
        whole grid unless ``placement`` is given; each case's own allowed region (foreground, organ
        or placement mask) still bounds where lesions go when it is populated.
        """
        paths = [Path(p) for p in paths]
        if not paths:
            raise LikelihoodError("no label files to build a likelihood map from")
        first: dict = {}

        def items():
            for p in paths:
                labels, geometry, _ = read_image(p)
                if not first:
                    first["ref"] = (geometry, labels.shape)
                yield (_map_mask(labels, lesion_classes, organ_label),
                       np.ones(labels.shape, bool), geometry, None)

        gen = items()
        head = next(gen)
        ref = reference or first["ref"]

        def chain():
            yield head
            yield from gen

        return cls._accumulate(chain(), len(paths), ref, sigma_mm, floor, placement, progress)

    @classmethod
    def _accumulate(cls, items, total, reference, sigma_mm, floor, placement, progress):
        geometry, shape = reference
        acc = np.zeros(tuple(shape), np.float32)
        allowed = np.zeros(tuple(shape), bool)
        for i, (mask, fg, geo, t) in enumerate(items):
            acc += resample_array(mask.astype(np.uint8), geo, geometry, shape, nearest=True,
                                  transform=t)
            if floor > 0 and placement is None:
                allowed |= resample_array(fg.astype(np.uint8), geo, geometry, shape,
                                          nearest=True, transform=t).astype(bool)
            if progress is not None:
                progress(i + 1, total)
        if sigma_mm > 0:
            sigma = [sigma_mm / s for s in geometry.spacing_zyx]
            acc = ndi.gaussian_filter(acc, sigma, mode="constant").astype(np.float32)
        if placement is not None:
            allowed = np.asarray(placement, bool)
            if allowed.shape != acc.shape:
                raise LikelihoodError(f"placement mask shape {allowed.shape} differs from the "
                                      f"map's grid {acc.shape}")
            acc[~allowed] = 0
        return cls(with_floor(acc, allowed, floor, in_place=True), geometry, own=True)

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path, overwrite: bool = False,
             tmp_dir: str | Path | None = None) -> None:
        """Write the map as NIfTI (or any format of the extension) with its geometry.

        A map built with alignment also writes ``<name>.align.npz`` beside it: the
        reference case's first channel and region, each case's alignment, how the map
        was built and its notices, so that a case read later is aligned the same way.
        Each file is written atomically, its temporary in ``tmp_dir`` (default: beside
        it; a run uses its ``.lesionmix/tmp``).
        """
        write_image(self.prob, self.geometry, path, overwrite=overwrite, tmp_dir=tmp_dir)
        side = align_path(path)
        if self.reference is None:
            if overwrite and side.exists():
                side.unlink()  # a stale alignment of an earlier map
            return
        save_alignment(side, self.reference, self.alignment, self.build, self.notices,
                       overwrite, tmp_dir=tmp_dir)

    @classmethod
    def load(cls, path: str | Path) -> LikelihoodMap:
        """Read a map written by :meth:`save` (or any non-negative image)."""
        array, geometry, _ = read_image(path)
        try:
            lmap = cls(array.astype(np.float32, copy=False), geometry, own=True)
        except LikelihoodError as exc:
            raise LikelihoodError(f"{path}: {exc}") from None
        side = align_path(path)
        if side.exists():
            lmap.alignment, lmap.build, lmap.notices = load_alignment_meta(side)
            lmap._reference_file = side
        return lmap

    def for_case(self, case, name: str | None = None) -> LikelihoodMap:
        """The map read on ``case``'s grid, through the case's alignment.

        A case the map was built from keeps the alignment found then; another case is
        aligned now (and remembered). Registered: the map is resampled through the
        transform; not alignable: the case's own map (its lesions, the same smoothing and
        floor), or uniform over its allowed region when that is empty; physical: the map
        itself, or read on the case's grid through physical coordinates. ``name``: the
        name the map knows the case by (default ``case.name``; an output case being made
        from a source goes by the source's).
        """
        shape = case.labels.shape
        a = None
        if self.alignment is not None:
            name = name or case.name
            a = self.alignment.get(name)
            if a is None:
                a = self.alignment[name] = align_case(
                    case.channels[0], case.foreground(), case.geometry, self.reference,
                    self.build.get("align", "auto"))
                self.notices += alignment_notices({name: a}, "the map's reference")
        if a is None or a.kind == "physical":
            return self if self.on_grid(case.geometry, shape) else self.resample_to(
                case.geometry, shape)
        if a.kind == "registered":
            back = a.transform(case.ndim).GetInverse()  # case points -> reference points
            return LikelihoodMap(resample_array(self.prob, self.geometry, case.geometry, shape,
                                                transform=back), case.geometry)
        b = self.build
        try:
            return LikelihoodMap.from_cases([case], b.get("lesion_classes"), b.get("organ_label"),
                                            b.get("sigma_mm", 0.0), b.get("floor", 0.0),
                                            align="none")
        except LikelihoodError:
            allowed = placement_region(case, b.get("organ_label"))
            return LikelihoodMap(allowed.astype(np.float32), case.geometry)

    def resample_to(self, geometry: Geometry, shape) -> LikelihoodMap:
        """The map read on another grid through physical coordinates (linear)."""
        return LikelihoodMap(resample_array(self.prob, self.geometry, geometry, shape), geometry)

    # ------------------------------------------------------------------ sampling
    def _table(self) -> BlockTable:
        if self._blocks is None:
            self._blocks = BlockTable(self.prob)
        return self._blocks

    def on_grid(self, geometry: Geometry, shape) -> bool:
        """True when ``geometry``/``shape`` is the map's own grid (cached per grid)."""
        key = (geometry, tuple(int(n) for n in shape))
        cache = self.__dict__.setdefault("_grid_cache", {})
        if key not in cache:
            cache[key] = geometry.matches(self.geometry) and key[1] == self.shape
        return cache[key]

    def sample(self, rng: np.random.Generator, geometry: Geometry | None = None,
               shape=None) -> tuple | None:
        """Draw one voxel with probability proportional to the map.

        One uniform draw and two binary searches in a table built once per map
        (:class:`BlockTable`).
        With ``geometry``/``shape`` of another grid the voxel is mapped there through
        physical coordinates; ``None`` when it falls outside that grid.
        """
        return LocationSampler(self._table(), self, geometry, shape).sample(rng)

    def _on(self, idx: tuple, geometry: Geometry | None, shape) -> tuple | None:
        """Voxel ``idx`` of the map on another grid (None: outside it)."""
        if geometry is None or self.on_grid(geometry, shape):
            return idx
        pt = self.geometry.index_to_physical(np.asarray(idx, float))
        target = np.rint(geometry.physical_to_index(pt)).astype(int)
        if (target < 0).any() or (target >= np.asarray(shape)).any():
            return None
        return tuple(int(i) for i in target)

    def sampler_for(self, geometry: Geometry, shape, allowed: np.ndarray | None = None,
                    occupied: np.ndarray | None = None) -> LocationSampler:
        """A sampler for one case: the map without voxels that are not ``allowed`` or are
        ``occupied`` (existing lesions), when the case is on the map's grid.

        Costs one pass over the map in blocks (:class:`BlockTable`: about a bit per
        voxel is kept). On another grid the map is sampled as it is and the points
        mapped physically.
        """
        if allowed is not None and self.on_grid(geometry, shape):
            return LocationSampler(BlockTable(self.prob, allowed, occupied), self, geometry,
                                   shape)
        return LocationSampler(self._table(), self, geometry, shape)


def with_floor(acc: np.ndarray, allowed: np.ndarray, floor: float,
               in_place: bool = False) -> np.ndarray:
    """Mix a summed map with a uniform share ``floor`` of the mass over ``allowed``.

    The result, normalised to a total of 1, is ``(1 - floor) * acc / acc.sum() + floor /
    n`` on the ``n`` allowed voxels (``acc`` scaled alone elsewhere): a location drawn from
    it is uniform over the allowed region with probability ``floor`` and follows ``acc``
    otherwise. Voxels that never held a lesion therefore stay possible, and so does a
    case whose lesions cover every voxel of ``acc`` (a one-case dataset, whose map is
    non-zero only on its own lesions, which placement excludes). Without mass in ``acc``
    the map is uniform over ``allowed``.

    Parameters
    ----------
    acc : ndarray of float32
        Non-negative summed masks (smoothed).
    allowed : ndarray of bool
        Where the uniform share goes.
    floor : float
        In [0, 1]; 0 returns ``acc`` unchanged.
    in_place : bool
        Scale ``acc`` itself (no second array of its size).

    Examples
    --------
    >>> acc = np.array([0, 0, 0, 3], np.float32)
    >>> [round(float(v), 3) for v in with_floor(acc, np.ones(4, bool), 0.2)]
    [0.05, 0.05, 0.05, 0.85]
    """
    n_allowed = int(np.count_nonzero(allowed)) if floor > 0 else 0
    if n_allowed == 0:
        return acc
    mass = float(acc.sum(dtype=np.float64))
    out = (np.multiply(acc, np.float32((1.0 - floor) / mass), out=acc if in_place else None)
           if mass > 0 else np.zeros_like(acc))
    np.add(out, np.float32(floor / n_allowed if mass > 0 else 1.0), out=out, where=allowed)
    return out


def _map_mask(labels: np.ndarray, lesion_classes, organ_label) -> np.ndarray:
    classes = lesion_classes_of(labels, lesion_classes, organ_label)
    if organ_label is not None:
        return in_classes(labels, [organ_label, *classes])
    return in_classes(labels, classes)


BLOCK = 4096  #: voxels per block of :class:`BlockTable`
_CHUNK = 256 * BLOCK  # voxels per step when a table is built


class BlockTable:
    """Draws voxels of a map with probability proportional to it, keeping per block of
    :data:`BLOCK` voxels what a table per voxel would keep per voxel.

    The voxels drawn from are those with a value > 0 that are ``allowed`` and not
    ``occupied``, in C order. A draw is ``u = random() * mass``, then the first voxel
    whose running total (float64, summed voxel by voxel in C order) exceeds ``u``: the
    running totals at the end of each block are kept, and those inside the block drawn
    into are summed again from the previous block's, the same additions in the same
    order. So every draw picks the voxel a cumulative table of every voxel would, for
    a bit (where the voxel may go) and a float64 per 4096 voxels instead of 16 bytes per
    voxel (an index and a running total).
    """

    def __init__(self, prob: np.ndarray, allowed: np.ndarray | None = None,
                 occupied: np.ndarray | None = None):
        self.shape = prob.shape
        self.prob = prob.reshape(-1)
        n = self.prob.size
        allowed = None if allowed is None else np.asarray(allowed, bool).reshape(-1)
        occupied = None if occupied is None else np.asarray(occupied, bool).reshape(-1)
        self.bits = np.zeros((n + 7) // 8, np.uint8)
        ends = np.zeros((n + BLOCK - 1) // BLOCK, np.float64)
        total, self.count, self.last = 0.0, 0, -1
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            values = self.prob[start:stop]
            keep = values > 0
            if allowed is not None:
                keep &= allowed[start:stop]
            if occupied is not None:
                keep &= ~occupied[start:stop]
            self.bits[start // 8:(stop + 7) // 8] = np.packbits(keep)
            kept = np.flatnonzero(keep)
            b0 = start // BLOCK
            if kept.size == 0:
                ends[b0:(stop + BLOCK - 1) // BLOCK] = total
                continue
            running = np.cumsum(np.concatenate(([total], values[kept].astype(np.float64))))
            per_block = np.bincount(kept // BLOCK, minlength=(stop - start + BLOCK - 1) // BLOCK)
            upto = np.cumsum(per_block)  # kept voxels up to each block's end
            ends[b0:b0 + upto.size] = running[upto]
            total = float(running[-1])
            self.count += kept.size
            self.last = start + int(kept[-1])
        self.ends = ends

    @property
    def mass(self) -> float:
        """Total map value it draws from (0 means nowhere to go)."""
        return float(self.ends[-1]) if self.count else 0.0

    def _block(self, b: int) -> np.ndarray:
        """Offsets in block ``b`` of the voxels drawn from."""
        size = min(BLOCK, self.prob.size - b * BLOCK)
        return np.flatnonzero(np.unpackbits(self.bits[b * BLOCK // 8:(b * BLOCK + size + 7) // 8],
                                            count=size))

    def draw(self, rng: np.random.Generator) -> int:
        """One flat voxel index (one uniform draw)."""
        if self.count == 0:
            raise LikelihoodError("the likelihood map has no voxel to sample from")
        u = rng.random() * self.mass
        b = int(np.searchsorted(self.ends, u, side="right"))
        if b >= self.ends.size:  # past the last running total: the last voxel
            return self.last
        inner = self._block(b)
        start = self.ends[b - 1] if b else 0.0
        running = np.cumsum(np.concatenate(([start], self.prob[b * BLOCK + inner]
                                            .astype(np.float64))))[1:]
        k = min(int(np.searchsorted(running, u, side="right")), inner.size - 1)
        return b * BLOCK + int(inner[k])

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """Every voxel drawn from (flat indices) and its running total: the per-voxel
        table the blocks stand for (as large as it sounds; for analysis)."""
        flat = np.flatnonzero(np.unpackbits(self.bits, count=self.prob.size))
        return flat, np.cumsum(self.prob[flat], dtype=np.float64)


class LocationSampler:
    """Draws voxels of one case from a likelihood map (see :meth:`LikelihoodMap.sampler_for`).

    Attributes
    ----------
    mass : float
        Total map value it samples from (0 means nowhere to go).
    """

    def __init__(self, table: BlockTable, lmap: LikelihoodMap, geometry: Geometry, shape):
        self.table, self.lmap = table, lmap
        self.geometry, self.shape = geometry, None if shape is None else tuple(shape)

    @property
    def mass(self) -> float:
        return self.table.mass

    def sample(self, rng: np.random.Generator) -> tuple | None:
        """One voxel index of the case, or ``None`` if it fell outside its grid."""
        idx = tuple(int(i) for i in np.unravel_index(self.table.draw(rng), self.table.shape))
        return self.lmap._on(idx, self.geometry, self.shape)
