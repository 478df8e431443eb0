"""Edits: one lesion added or removed, as new values for a box of a case.

Applying an :class:`Edit` returns its inverse, which is what the GUI's Undo keeps. The
functions here compute edits without changing the case; :mod:`.mix` applies them in the
loop that reaches a target load, and the napari docks apply them for the live preview.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .appearance import RING, ring_of
from .blend import blend, blend_weights
from .case import Case
from .inpaint import inpaint_patch, region_for, ring_label
from .lesions import Lesion, lesion_classes_of, lesion_mask, placement_region, structure
from .morphology import dilate
from .recipe import Recipe
from .transforms import LesionParams, augment

LUT_LIMIT = 1 << 17  # label values up to this use a boolean look-up table


@dataclass
class Edit:
    """New values for a box of a case.

    Attributes
    ----------
    slices : tuple of slice
        The box in the case's array.
    channels : ndarray, (C, *box)
    labels : ndarray, (*box)
    """

    slices: tuple
    channels: np.ndarray
    labels: np.ndarray

    def apply(self, case: Case) -> Edit:
        """Write the edit into ``case`` in place; return the edit that undoes it."""
        full = (slice(None),) + tuple(self.slices)
        old = Edit(self.slices, case.channels[full].copy(), case.labels[self.slices].copy())
        case.channels[full] = self.channels
        case.labels[self.slices] = self.labels
        return old

    def box(self) -> list:
        """The box as ``[[start, stop], ...]`` (JSON-ready)."""
        return [[int(s.start), int(s.stop)] for s in self.slices]


class CaseContext:
    """What placement needs of a target case, computed once per case.

    Parameters
    ----------
    case : Case
        The target.
    recipe : Recipe
        Its lesion classes, organ label and placement options.
    extra_classes : iterable of int
        Classes that count as lesions even if the case lacks them (the bank's).
    stats : ndarray (C, 2), optional
        The case's intensity statistics when the case is a patch of a larger one (measured
        on the whole case); default: measured on ``case``'s allowed region.
    """

    def __init__(self, case: Case, recipe: Recipe, extra_classes=(), stats=None):
        self.recipe = recipe
        self.name = case.name  # the source's (a likelihood map knows the case by it)
        classes = set(lesion_classes_of(case.labels, recipe.lesion_classes, recipe.organ_label))
        if recipe.lesion_classes is None:  # the bank's classes count even if this case lacks them
            classes |= {int(c) for c in extra_classes}
        self.classes = sorted(classes)
        self.allowed = placement_region(case, recipe.organ_label)
        self.stats = (case.intensity_stats(self.allowed) if stats is None
                      else np.asarray(stats, np.float64).reshape(case.n_channels, 2))
        self.voxel_volume = float(case.geometry.voxel_volume)
        self.spacing_zyx = np.asarray(case.geometry.spacing_zyx, float)
        kind = case.labels.dtype
        top = (np.iinfo(kind).max + 1 if kind.itemsize <= 2
               else max(int(case.labels.max(initial=0)), max(self.classes, default=0)) + 1)
        # a look-up table when label values are small, np.isin when they are huge
        self.is_lesion = np.zeros(top, bool) if top <= LUT_LIMIT else None
        if self.is_lesion is not None:
            self.is_lesion[[c for c in self.classes if c < top]] = True

    def lesion_voxels(self, labels: np.ndarray) -> np.ndarray:
        """Boolean map of lesion-class voxels of a label patch (compares for one or two
        classes, else a table look-up)."""
        if 0 < len(self.classes) <= 2 and labels.dtype.kind in "iu":
            out = labels == self.classes[0]
            for c in self.classes[1:]:
                out |= labels == c
            return out
        lut = self.is_lesion
        if lut is None:
            return np.isin(labels, self.classes)
        if np.iinfo(labels.dtype).max >= lut.size:  # labels wider than the table (widened)
            top = (np.iinfo(labels.dtype).max + 1 if labels.dtype.itemsize <= 2
                   else int(labels.max(initial=0)) + 1)
            if top > LUT_LIMIT:
                return np.isin(labels, self.classes)
            if top > lut.size:
                lut = np.zeros(top, bool)
                lut[[c for c in self.classes if c < top]] = True
                self.is_lesion = lut
        return lut[labels]

    def count_lesion_voxels(self, labels: np.ndarray) -> int:
        """Number of lesion-class voxels in a label map (one pass)."""
        if len(self.classes) <= 4 and labels.dtype.kind in "iu":  # a few compares, no copy
            return int(sum(np.count_nonzero(labels == c) for c in self.classes))
        if labels.dtype.itemsize <= 2 and labels.size:
            counts = np.bincount(labels.ravel())
            return int(sum(counts[c] for c in self.classes if c < counts.size))
        return int(np.count_nonzero(self.lesion_voxels(labels)))


@dataclass
class Prepared:
    """An augmented lesion ready to place: image in the target's intensities, mask, alpha.

    ``lo`` and ``hi`` are the mask's bounding box in the patch (inclusive), so a location
    can be refused when the volume border would cut the lesion. ``level`` is the lesion's
    surroundings in its source case, per channel, in the target's intensities (None when
    unknown); ``site`` the voxels its surroundings are compared on at a new place: the
    mask and the 2-voxel ring around it.
    """

    image: np.ndarray
    mask: np.ndarray
    alpha: np.ndarray
    guard: np.ndarray
    centroid: np.ndarray
    label: int
    lo: np.ndarray
    hi: np.ndarray
    level: np.ndarray | None = None
    site: np.ndarray | None = None

    @property
    def voxels(self) -> int:
        return int(self.mask.sum())


def drop_fragments(mask: np.ndarray, min_voxels: int, connectivity: str = "full") -> np.ndarray:
    """``mask`` without its connected components of fewer than ``min_voxels`` voxels.

    Such a fragment would be labelled as lesion without being a lesion (the bank and the
    load loop do not count it), so it is never written.
    """
    if min_voxels <= 1 or not mask.any():
        return mask
    lab, n = ndi.label(mask, structure(mask.ndim, connectivity))
    if n == 1 and mask.sum() >= min_voxels:
        return mask
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[lab]


def prepare_lesion(entry, params: LesionParams, ctx: CaseContext) -> Prepared:
    """Augment a bank lesion in its own patch and map its intensities to the target.

    The patch is resampled onto the target's voxel size when the source's differs (the
    lesion keeps its size in mm), and padded so that the soft blend and the ``min_gap``
    guard fit inside.
    """
    opts = ctx.recipe.populate
    target = None if np.allclose(entry.spacing_zyx, ctx.spacing_zyx, rtol=1e-6) \
        else ctx.spacing_zyx
    level = entry.level
    image = entry.image
    if entry.context is not None and level is not None:
        # the patch's non-tissue (background, another organ, other lesions) is not pasted
        # along with the lesion: it becomes the lesion's surroundings level
        other = ~entry.context & ~entry.mask
        if other.any():
            image = image.copy()
            image[:, other] = np.asarray(level, np.float32)[:, None]
    image, mask = augment(image, entry.mask, params, opts.interpolation,
                          stats=entry.stats, spacing=entry.spacing_zyx, target_spacing=target,
                          mask_interpolation=opts.mask_interpolation,
                          brightness=opts.brightness_mode, level=level, restore=opts.restore,
                          donor=entry.appearance)
    mask = drop_fragments(mask, ctx.recipe.min_voxels, ctx.recipe.connectivity)
    sigma = opts.blend_sigma if opts.blend == "soft" else 0.0
    pad = max(int(opts.min_gap), int(np.ceil(3 * sigma)), RING)
    if pad:
        width = [(0, 0)] + [(pad, pad)] * mask.ndim
        image = np.pad(image, width, mode="edge")
        mask = np.pad(mask, width[1:])
    level = None if level is None else np.array(level, np.float64)
    if not np.array_equal(entry.stats, ctx.stats):
        src, dst = entry.stats, ctx.stats
        for c in range(image.shape[0]):
            cs = min(c, len(src) - 1)
            image[c] = (image[c] - src[cs, 0]) / src[cs, 1] * dst[c, 1] + dst[c, 0]
            if level is not None:
                level[c] = (level[c] - src[cs, 0]) / src[cs, 1] * dst[c, 1] + dst[c, 0]
    alpha = blend_weights(mask, opts.blend, sigma)
    if opts.min_gap > 0 and mask.any():
        guard = dilate(mask, int(opts.min_gap))
    else:
        guard = mask
    if mask.any():
        centroid = np.array(ndi.center_of_mass(mask))
        pts = np.nonzero(mask)
        lo, hi = np.array([p.min() for p in pts]), np.array([p.max() for p in pts])
    else:
        centroid = (np.array(mask.shape) - 1) / 2.0
        lo, hi = np.zeros(mask.ndim, int), np.array(mask.shape) - 1
    return Prepared(image.astype(np.float32, copy=False), mask, alpha, guard, centroid,
                    int(entry.lesion.label), lo, hi, level, mask | ring_of(mask))


def _boxes(shape, corner, patch_shape):
    """Target slices and patch slices of a patch at ``corner``, clipped to ``shape``."""
    tgt, src = [], []
    for c, p, n in zip(corner, patch_shape, shape):
        a, b = max(c, 0), min(c + p, n)
        if a >= b:
            return None, None
        tgt.append(slice(a, b))
        src.append(slice(a - c, b - c))
    return tuple(tgt), tuple(src)


def check_location(case: Case, prep: Prepared, center, ctx: CaseContext) -> str:
    """Why ``prep`` cannot go at ``center`` ("" if it can)."""
    total = prep.voxels
    if total == 0:
        return "empty lesion after augmentation"
    corner = np.rint(np.asarray(center, float) - prep.centroid).astype(int)
    tgt, src = _boxes(case.labels.shape, corner, prep.mask.shape)
    if tgt is None:
        return "outside the image"
    # on the outermost voxels a lesion cannot be told from one the border cuts: keep off them
    if (corner + prep.lo < 1).any() or (corner + prep.hi > np.asarray(case.labels.shape) - 2).any():
        return "cut by the volume border"
    lesions = ctx.lesion_voxels(case.labels[tgt])
    if (lesions & prep.guard[src]).any():
        return "touches an existing lesion"
    inside = np.count_nonzero(ctx.allowed[tgt] & prep.mask[src])
    if inside < ctx.recipe.populate.min_inside * total:
        return f"only {inside} of its {total} voxels inside the allowed region"
    tol = ctx.recipe.populate.surround_tol
    if tol > 0 and prep.level is not None:
        here = site_quartiles(case, prep, tgt, src, ctx, lesions)
        if here is None:
            return "no tissue around the location"
        # the middle half of the tissue there must be like the lesion's own surroundings
        off = np.abs(here[:, [0, 2]] - prep.level[:, None]).max(axis=1) / ctx.stats[:, 1]
        if (off > tol).any():
            c = int(np.argmax(off))
            return (f"surroundings unlike the lesion's own (channel {c}: {off[c]:.1f} z "
                    f"away, tolerance {tol:g})")
    return ""


def site_quartiles(case: Case, prep: Prepared, tgt, src, ctx: CaseContext,
                   lesions: np.ndarray | None = None) -> np.ndarray | None:
    """Quartiles (25th, 50th, 75th percentile) of each channel of ``case`` over the tissue
    where ``prep`` would sit and around it (its ``site`` without disallowed or lesion
    voxels), ``(C, 3)``; None when the site holds no such voxel. ``lesions``: the lesion
    voxels of the box ``tgt``, when known."""
    if lesions is None:
        lesions = ctx.lesion_voxels(case.labels[tgt])
    site = prep.site[src] & ctx.allowed[tgt] & ~lesions
    if not site.any():
        return None
    return np.array([np.quantile(case.channels[c][tgt][site], (0.25, 0.5, 0.75))
                     for c in range(case.n_channels)])


def find_location(case: Case, prep: Prepared, sampler, ctx: CaseContext,
                  rng: np.random.Generator, max_tries: int) -> tuple[tuple | None, str, int]:
    """Search a location for ``prep``: the engine's one location search.

    Draws up to ``max_tries`` centres from ``sampler`` (see ``mix.location_sampler``) and
    returns the first that :func:`check_location` accepts. The batch engine, the GUI's
    "Sample from heatmap" and replay all go through here, so a location the GUI finds is
    one the batch engine would accept.

    Returns
    -------
    center : tuple or None
        Voxel index (numpy order) of the lesion's centroid, or None when no draw fitted.
    reason : str
        "" when a location was found, else why the last draw was refused.
    tries : int
        Draws made.
    """
    reason = "no location sampled"
    for t in range(max_tries):
        center = sampler.sample(rng)
        if center is None:
            reason = "sampled location outside the image"
            continue
        reason = check_location(case, prep, center, ctx)
        if not reason:
            return tuple(center), "", t + 1
    return None, reason, max_tries


def place_edit(case: Case, prep: Prepared, center, ctx: CaseContext) -> Edit:
    """The edit that inserts ``prep`` centred at ``center`` (no checks).

    Whatever the location, nothing is written outside the allowed region (the lesion is cut
    to it, and pieces left smaller than ``min_voxels`` are not written), and the voxels of
    existing lesions keep their values: the blend only reaches allowed, lesion-free voxels
    and the new lesion's own.
    """
    corner = np.rint(np.asarray(center, float) - prep.centroid).astype(int)
    tgt, src = _boxes(case.labels.shape, corner, prep.mask.shape)
    if tgt is None:
        raise ValueError(f"the lesion centred at {tuple(center)} lies outside the image")
    allowed = ctx.allowed[tgt]
    mask = prep.mask[src] & allowed
    if mask.sum() < prep.voxels:
        mask = drop_fragments(mask, ctx.recipe.min_voxels, ctx.recipe.connectivity)
    alpha = np.where(mask, prep.alpha[src],
                     prep.alpha[src] * (allowed & ~ctx.lesion_voxels(case.labels[tgt])))
    background = case.channels[(slice(None),) + tgt]
    image = prep.image[(slice(None),) + src]
    if ctx.recipe.populate.brightness_mode == "contrast" and prep.level is not None:
        here = site_quartiles(case, prep, tgt, src, ctx)  # keep the contrast to the new place
        if here is not None:
            image = image + (here[:, 1] - prep.level).astype(np.float32).reshape(
                (-1,) + (1,) * mask.ndim)
    channels = blend(background, image, alpha)
    channels = np.where(alpha > 0, channels, background).astype(case.channels.dtype)
    labels = case.labels[tgt].copy()
    if prep.label > np.iinfo(labels.dtype).max:
        raise ValueError(f"{case.name}: lesion class {prep.label} does not fit the case's "
                         f"{labels.dtype} label map; widen it first (core.mix.fit_labels)")
    labels[mask] = prep.label
    return Edit(tgt, channels, labels)


def populate_edit(case: Case, entry, params: LesionParams, center, ctx: CaseContext,
                  check: bool = True) -> tuple[Edit | None, str]:
    """Augment ``entry`` with ``params`` and insert it at ``center``.

    Returns
    -------
    edit : Edit or None
        ``None`` when ``check`` is on and the location is refused.
    reason : str
        Why it was refused ("" when it fits).
    """
    prep = prepare_lesion(entry, params, ctx)
    if check:
        reason = check_location(case, prep, center, ctx)
        if reason:
            return None, reason
    return place_edit(case, prep, center, ctx), ""


def inpaint_edit(case: Case, lesion: Lesion, ctx: CaseContext, noise_seed: int) -> Edit:
    """The edit that removes ``lesion``: Telea fill of its dilated region, ring label.

    The fill draws only on voxels of the allowed region (foreground, organ or placement
    mask) that are not lesions, so neither the background nor other lesions bleed in, and
    it writes only there and on the lesion: voxels outside the allowed region keep their
    values.

    Only the lesion's own voxels change label (to the most common non-lesion label of the
    ring around it); the dilation changes image values only, so context labels stay.
    """
    opts = ctx.recipe.inpaint
    pad = int(opts.dilate) + int(np.ceil(opts.radius)) + 3
    mask, box = lesion_mask(case.labels, lesion, ctx.recipe.connectivity, pad=pad)
    labels = case.labels[box]
    others = ctx.lesion_voxels(labels) & ~mask
    # the dilation stays in the allowed region: a lesion at the edge of the brain (or of
    # nnU-Net's non-zero region) is not painted over the background next to it
    region = region_for(mask, opts.dilate, others, ctx.recipe.connectivity) & (ctx.allowed[box] | mask)
    channels = inpaint_patch(case.channels[(slice(None),) + box], region, opts,
                             np.random.default_rng(noise_seed),
                             known=ctx.allowed[box] & ~(region | others))
    new_labels = labels.copy()
    new_labels[mask] = ring_label(labels, region, ctx.classes)
    return Edit(box, channels.astype(case.channels.dtype, copy=False), new_labels)
