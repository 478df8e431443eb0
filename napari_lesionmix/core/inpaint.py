"""Remove one lesion: fill a region of a small patch from its surroundings.

The Inpaint operation of LesionMix (docs/engine.md, "Inpaint") works on a small patch around
one lesion, never on the full volume:

1. :func:`region_for` dilates the lesion mask by ``dilate`` voxels and leaves other
   lesions out of the region;
2. :func:`inpaint_patch` fills the region by fast marching (Telea): 2D slice-wise along
   every axis and averaged (``"slices"``, default), slice-wise along one axis
   (``"slice-axis"``), or a true 3D fill in distance order (``"3d"``); then smooths
   across the region so no seam shows, and optionally adds noise with the grain of the
   same tissue around it, estimated robustly (``texture``);
3. :func:`ring_label` gives the label the region gets: the most common non-lesion label
   of the ring around it.

Notes on OpenCV
---------------
``cv2.inpaint`` accepts 32-bit float single-channel images, but its Telea code adds a
*normalised* gradient term to every filled pixel: up to about +-1.5 intensity units
whatever the image's scale (measured with OpenCV 5.0: a constant image of 0.3 comes back
with values from -1.1 to 1.7 in the hole). That is harmless on 8-bit images and ruinous
on z-scored MR intensities. Every channel is therefore mapped to ``[0, 2**20]`` (its
known values' min/max) before the call and mapped back after, which shrinks the artefact
to ~1e-6 of the intensity range while float32 keeps ~1e-7 relative precision. OpenCV's
Telea thus has effectively no first-order (gradient) term: it is a weighted mean, which
pulls the middle of a large hole in a steep ramp towards the boundary values. The
``"3d"`` fill here keeps the first-order term.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import cv2
import numpy as np
from scipy import ndimage as ndi

from .appearance import grain_noise, grain_size, quiet_std, robust_std
from .morphology import dilate
from .recipe import INPAINT_METHODS, InpaintOptions

__all__ = ["inpaint_patch", "region_for", "ring_label"]

#: Known values are mapped to [0, _TELEA_SCALE] before cv2.inpaint (see the module notes).
_TELEA_SCALE = float(2**20)
#: Smallest direction weight of the 3D fill, so that a neighbour across the front still counts.
_MIN_DIRECTION = 0.05
#: Gaussian sigma (voxels) of the copy of the sources the 3D fill takes gradients on.
_GRAD_SIGMA = 1.0


def _dilate(mask: np.ndarray, iterations: int, connectivity: str = "full") -> np.ndarray:
    if iterations <= 0 or not mask.any():
        return mask.copy()
    return dilate(mask, iterations, connectivity)


# ---------------------------------------------------------------------------- region, label
def region_for(lesion_mask: np.ndarray, dilate: int, other_lesions: np.ndarray | None = None,
               connectivity: str = "full") -> np.ndarray:
    """The region to inpaint for one lesion: its mask dilated, other lesions left out.

    Parameters
    ----------
    lesion_mask : (*p) bool ndarray
        The lesion to remove, in its patch (2D or 3D).
    dilate : int
        Voxels of dilation (default 1, our choice; docs/recipe.md). 0 keeps the mask as it is.
    other_lesions : (*p) bool ndarray, optional
        Voxels of other lesions in the patch. They are never part of the region: they keep
        their values (and, unless the caller passes ``known`` to :func:`inpaint_patch`,
        they are used as fill sources like any other voxel outside the region).
    connectivity : {"full", "face"}
        Structuring element of one dilation step: ``full`` is the 3x3(x3) cube (default),
        ``face`` the cross.

    Returns
    -------
    region : (*p) bool ndarray
        A new array; the lesion itself is always in it.

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[2, 2] = True
    >>> int(region_for(m, 1).sum())
    9
    >>> other = np.zeros((5, 5), bool); other[1, :] = True
    >>> int(region_for(m, 1, other).sum())
    6
    """
    mask = np.asarray(lesion_mask, dtype=bool)
    if mask.ndim not in (2, 3):
        raise ValueError(f"lesion_mask: expected a 2D or 3D mask, got shape {mask.shape}")
    if isinstance(dilate, bool) or int(dilate) != dilate or dilate < 0:
        raise ValueError(f"dilate: expected a whole number >= 0, got {dilate!r}")
    region = _dilate(mask, int(dilate), connectivity)
    if other_lesions is not None:
        other = np.asarray(other_lesions, dtype=bool)
        if other.shape != mask.shape:
            raise ValueError(f"other_lesions: shape {other.shape} does not match the lesion "
                             f"mask's {mask.shape}")
        region &= ~(other & ~mask)
    return region


def ring_label(labels_patch: np.ndarray, region: np.ndarray, lesion_classes: Iterable[int] | None,
               width: int = 2) -> int:
    """The label an inpainted region gets: the most common non-lesion label around it.

    Parameters
    ----------
    labels_patch : (*p) int ndarray
        The label map of the patch.
    region : (*p) bool ndarray
        The inpainted region.
    lesion_classes : iterable of int or None
        Label values that are lesions; they are never chosen. ``None`` means every
        non-zero label is a lesion (binary case), so the answer is always 0.
    width : int
        Width of the ring in voxels: the region dilated ``width`` times (full
        connectivity) minus the region.

    Returns
    -------
    label : int
        The most common candidate label in the ring; ties go to the smallest value; 0 when
        the ring holds no candidate (e.g. only other lesions, or an empty region).

    Examples
    --------
    >>> lab = np.zeros((7, 7), np.uint8); lab[1:6, 1:6] = 1; lab[3, 3] = 2
    >>> reg = lab == 2
    >>> ring_label(lab, reg, [2], width=1)
    1
    >>> ring_label(np.where(lab == 2, 2, 0), reg, [2])
    0
    """
    labels = np.asarray(labels_patch)
    region = np.asarray(region, dtype=bool)
    if labels.shape != region.shape:
        raise ValueError(f"region: shape {region.shape} does not match the labels' {labels.shape}")
    if isinstance(width, bool) or int(width) != width or width < 1:
        raise ValueError(f"width: expected a whole number >= 1, got {width!r}")
    ring = _dilate(region, int(width)) & ~region
    values = labels[ring]
    if lesion_classes is None:
        values = values[values == 0]
    else:
        values = values[~np.isin(values, np.asarray(list(lesion_classes)))]
    if values.size == 0:
        return 0
    uniq, counts = np.unique(values, return_counts=True)
    return int(uniq[np.argmax(counts)])  # unique is sorted: argmax takes the smallest on ties


# ---------------------------------------------------------------------------- inpaint
def inpaint_patch(image: np.ndarray, region: np.ndarray, options: InpaintOptions,
                  rng: np.random.Generator, known: np.ndarray | None = None) -> np.ndarray:
    """Fill ``region`` of a small multi-channel patch from its surroundings.

    Parameters
    ----------
    image : (C, *p) float32 ndarray
        The patch, channels first, 2D or 3D spatial. Other dtypes are converted.
    region : (*p) bool ndarray
        The voxels to fill (see :func:`region_for`).
    options : InpaintOptions
        ``method`` (``"slices"``, ``"slice-axis"``, ``"3d"``), ``axis`` (for
        ``"slice-axis"`` in 3D), ``radius`` (Telea neighbourhood, voxels), ``seam_sigma``
        and ``texture``.
    rng : numpy.random.Generator
        Only used when ``options.texture`` is on: one standard normal field per channel,
        in channel order, over the region's bounding box.
    known : (*p) bool ndarray, optional
        Voxels whose values may be used as sources. Default: every voxel outside
        ``region``. Voxels that are neither known nor in the region (e.g. outside the
        image, or other lesions the caller wants ignored) are treated as holes too while
        the fill runs (never sources, filled as stepping stones), are left out of the seam
        smoothing and of the texture estimate, and are returned unchanged.

    Returns
    -------
    out : (C, *p) float32 ndarray
        A new array. Outside ``region`` it is bit-for-bit the input (as float32).

    Notes
    -----
    Steps, per channel with the same region:

    1. Fill. ``"slices"``: every 2D slice along each of the three axes that meets the
       region is filled by ``cv2.inpaint(..., cv2.INPAINT_TELEA)`` on its bounding box
       plus a margin of ``ceil(radius) + 2``, and the (up to three) fills of a voxel are
       averaged. ``"slice-axis"``: the same along ``options.axis`` only. ``"3d"``: voxels
       are filled shell by shell in order of their distance to the known voxels; each
       gets the Telea estimate ``sum w (I(q) + grad I(q) . (p - q)) / sum w`` over the
       already known ``q`` within ``max(radius, sqrt(ndim))`` with
       ``w = 1/|p-q|^2 * 1/(1 + |T(p) - T(q)|) * max(|cos(p-q, grad T)|, 0.05)``
       (``T`` the distance map; ``grad I`` of a source taken on a Gaussian-smoothed copy
       of the sources, sigma 1, so noise is not extrapolated into the fill; of a filled
       voxel, on the fill). In 2D, both slice methods are one Telea fill and
       ``"3d"`` is the same shell fill in 2D.
       Fill values are clipped to the range of the channel's known values. Region voxels
       that no slice can fill (their slice has no known voxel along every axis used, e.g.
       the region covers whole slices) get the ``"3d"`` fill; voxels the ``"3d"`` fill
       cannot reach (no path to a known voxel) get the mean of the known values; with no
       known voxel at all the patch is returned unchanged.
    2. Seam: if ``seam_sigma > 0`` the region's values become those of a Gaussian of
       ``seam_sigma`` voxels over the filled patch (``mode="nearest"``; voxels neither
       known nor in the region excluded by normalised convolution).
    3. Texture: if on, add noise inside the region with the texture (high-pass std) and
       the grain size of the same tissue in the ring around it (region dilated twice, full
       connectivity, known voxels only), estimated robustly: see :func:`_tissue_grain`.

    Examples
    --------
    >>> from napari_lesionmix.core.recipe import InpaintOptions
    >>> img = np.full((1, 12, 12, 12), 100.0, np.float32)
    >>> region = np.zeros((12, 12, 12), bool); region[4:8, 4:8, 4:8] = True
    >>> img[0][region] = 20.0
    >>> out = inpaint_patch(img, region, InpaintOptions(texture=False),
    ...                     np.random.default_rng(0))
    >>> bool(np.allclose(out[0][region], 100.0, atol=1e-3))
    True
    >>> bool((out[0][~region] == img[0][~region]).all())
    True
    """
    img = np.asarray(image)
    region = np.asarray(region, dtype=bool)
    if region.ndim not in (2, 3):
        raise ValueError(f"region: expected a 2D or 3D mask, got shape {region.shape}")
    if img.ndim != region.ndim + 1 or img.shape[1:] != region.shape:
        raise ValueError(f"image: expected shape (C, {', '.join(map(str, region.shape))}), "
                         f"got {img.shape}")
    if options.method not in INPAINT_METHODS:
        raise ValueError(f"inpaint.method: {options.method!r} is not one of "
                         f"{', '.join(map(repr, INPAINT_METHODS))}")
    out = np.array(img, dtype=np.float32, copy=True)
    if not region.any() or out.shape[0] == 0:
        return out
    if known is None:
        source = ~region
    else:
        known = np.asarray(known, dtype=bool)
        if known.shape != region.shape:
            raise ValueError(f"known: shape {known.shape} does not match the region's "
                             f"{region.shape}")
        source = known & ~region
    if not source.any():
        return out
    work = ~source                       # holes while filling: region + unknown voxels
    unknown = work & ~region
    lo = np.array([c[source].min() for c in out], dtype=np.float64)
    hi = np.array([c[source].max() for c in out], dtype=np.float64)

    if options.method == "3d":
        values = _fill_shells(out, work, region, float(options.radius), lo, hi)
    else:
        if region.ndim == 2:
            axes: tuple = (None,)
        elif options.method == "slices":
            axes = (0, 1, 2)
        else:
            axes = (int(options.axis),)
        values = _fill_slices(out, work, region, axes, float(options.radius), lo, hi)

    filled = out.copy()
    filled[:, region] = values
    if options.seam_sigma > 0:
        smooth = _smooth(filled, region, unknown, float(options.seam_sigma))
        filled[:, region] = smooth
    if options.texture:
        box = _bbox(region, 0)
        inner = region[box]
        for c, (grain, size) in enumerate(_tissue_grain(filled, region, source, unknown)):
            noise = grain_noise(rng, inner.shape, size, grain)
            filled[c][box][inner] += noise[inner]
    out[:, region] = filled[:, region]
    return out


def _tissue_grain(filled: np.ndarray, region: np.ndarray, source: np.ndarray,
                  unknown: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """Per channel, the texture (std of the high-pass residual) and the grain size (see
    :func:`.appearance.grain_size`) that the filled region should get: those of the same
    tissue around it.

    Over the ring of known voxels within 2 voxels of the region, the residual
    ``x - gaussian(x, 1)`` is split from its low-pass part; the third of the ring (at
    least 20 voxels) whose low-pass values are closest to the fill's median is the same
    tissue as the fill (a ring around a white-matter lesion may also hold grey matter or
    CSF, whose grain and edges are not the site's). The texture is the std of the quietest
    part of their residual (:func:`.appearance.quiet_std`).
    """
    n_chan = filled.shape[0]
    ring = _dilate(region, 2) & source
    if not ring.any():
        return [(0.0, np.zeros(region.ndim))] * n_chan
    low = _smooth(filled, ring, unknown, 1.0)
    resid = filled[:, ring] - low
    spread = np.array([max(robust_std(r), 1e-12) for r in resid])
    centre = np.median(filled[:, region], axis=1)
    # how unlike the fill each ring voxel's tissue is (in residual stds, worst channel);
    # the same tissue: the closest third of the ring (at least 20 voxels)
    unlike = np.max(np.abs(low - centre[:, None]) / spread[:, None], axis=0)
    keep = min(unlike.size, max(20, unlike.size // 3))
    same = np.zeros(unlike.size, bool)
    same[np.argsort(unlike, kind="stable")[:keep]] = True
    where = np.zeros(region.shape, bool)
    where[ring] = same
    out = []
    for c in range(n_chan):
        field = np.zeros(region.shape, np.float32)
        field[ring] = resid[c]
        out.append((quiet_std(resid[c][same]), grain_size(field, where)))
    return out


def _bbox(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    """Bounding box of ``mask`` grown by ``margin`` and clipped to the array."""
    sl = []
    for ax in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != ax)))
        sl.append(slice(max(int(hit[0]) - margin, 0),
                        min(int(hit[-1]) + margin + 1, mask.shape[ax])))
    return tuple(sl)


def _smooth(filled: np.ndarray, where: np.ndarray, unknown: np.ndarray,
            sigma: float) -> np.ndarray:
    """Gaussian of each channel of ``filled``, evaluated at the voxels of ``where``.

    Computed on the bounding box of ``where`` plus the kernel's reach, which gives the
    same values as over the whole patch. Voxels of ``unknown`` are excluded by
    normalised convolution. Returns (C, n) values in the C order of ``where``.
    """
    reach = int(4.0 * sigma + 0.5) + 1
    box = _bbox(where, reach)
    sub = filled[(slice(None), *box)].astype(np.float64)
    inner = where[box]
    unk = unknown[box]
    res = np.empty((filled.shape[0], int(inner.sum())), np.float32)
    if unk.any():
        weight = (~unk).astype(np.float64)
        norm = ndi.gaussian_filter(weight, sigma, mode="nearest")[inner]
        for c, chan in enumerate(sub):
            num = ndi.gaussian_filter(chan * weight, sigma, mode="nearest")[inner]
            res[c] = num / np.maximum(norm, 1e-12)
    else:
        for c, chan in enumerate(sub):
            res[c] = ndi.gaussian_filter(chan, sigma, mode="nearest")[inner]
    return res


# ---------------------------------------------------------------------------- slice-wise Telea
def _fill_slices(img: np.ndarray, work: np.ndarray, region: np.ndarray, axes: tuple,
                 radius: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """OpenCV Telea on every 2D slice meeting the region, averaged over ``axes``.

    ``axes`` is ``(None,)`` for a 2D patch. Returns (C, n_region) float32 values.
    """
    n_chan = img.shape[0]
    scale = np.where(hi > lo, _TELEA_SCALE / np.maximum(hi - lo, 1e-30), 1.0)
    bshape = (n_chan,) + (1,) * region.ndim
    scaled = ((img - lo.reshape(bshape)) * scale.reshape(bshape)).astype(np.float32)
    scaled[:, work] = 0.0
    acc = np.zeros(img.shape, np.float32)
    count = np.zeros(region.shape, np.uint8)
    margin = int(math.ceil(radius)) + 2
    for axis in axes:
        if axis is None:               # a 2D patch: one "slice"
            s_v, w_v, r_v = scaled[:, None], work[None], region[None]
            a_v, c_v = acc[:, None], count[None]
        else:
            s_v = np.moveaxis(scaled, axis + 1, 1)
            a_v = np.moveaxis(acc, axis + 1, 1)
            w_v, r_v, c_v = (np.moveaxis(x, axis, 0) for x in (work, region, count))
        # per slice: the region's bounding box (vectorised), grown by the margin
        rows = r_v.any(axis=2)
        cols = r_v.any(axis=1)
        hits = np.flatnonzero(rows.any(axis=1))
        n_r, n_c = rows.shape[1], cols.shape[1]
        r0 = np.maximum(rows[hits].argmax(axis=1) - margin, 0)
        r1 = np.minimum(n_r - rows[hits, ::-1].argmax(axis=1) + margin, n_r)
        c0 = np.maximum(cols[hits].argmax(axis=1) - margin, 0)
        c1 = np.minimum(n_c - cols[hits, ::-1].argmax(axis=1) + margin, n_c)
        for i, y0, y1, x0, x1 in zip(hits.tolist(), r0.tolist(), r1.tolist(),
                                     c0.tolist(), c1.tolist(), strict=True):
            box = (slice(y0, y1), slice(x0, x1))
            mask = w_v[i][box]
            if mask.all():             # no source in the box: try the whole slice
                box = (slice(None), slice(None))
                mask = w_v[i]
                if mask.all():
                    continue
            mask8 = mask.astype(np.uint8)
            for c in range(n_chan):
                # only region voxels of acc and count are read: add the whole box
                a_v[c, i][box] += cv2.inpaint(np.ascontiguousarray(s_v[c, i][box]), mask8,
                                              radius, cv2.INPAINT_TELEA)
            c_v[i][box] += 1
    cnt = count[region]
    values = np.empty((n_chan, cnt.size), np.float32)
    reached = cnt > 0
    for c in range(n_chan):
        v = acc[c][region][reached] / cnt[reached] / scale[c] + lo[c]
        values[c, reached] = np.clip(v, lo[c], hi[c])
    if not reached.all():   # e.g. the region fills whole slices: the shell fill takes over
        values[:, ~reached] = _fill_shells(img, work, region, radius, lo, hi)[:, ~reached]
    return values


# ---------------------------------------------------------------------------- 3D shell fill
def _fill_shells(img: np.ndarray, work: np.ndarray, region: np.ndarray, radius: float,
                 lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Fast-marching-order fill with Telea weights, vectorised per distance shell.

    Works in any dimension. Returns (C, n_region) float32 values.
    """
    n_chan = img.shape[0]
    ndim = work.ndim
    reach = max(radius, math.sqrt(ndim)) + 1e-6   # at least the full 3^n neighbourhood
    h = int(math.floor(reach))
    grid = np.indices((2 * h + 1,) * ndim).reshape(ndim, -1).T - h
    dist = np.sqrt((grid ** 2).sum(axis=1))
    keep = (dist > 0) & (dist <= reach)
    offs, dist = grid[keep], dist[keep]
    back_t = np.ascontiguousarray(-offs.T, dtype=np.float64)   # p - q for q = p + offset
    inv_dist3 = 1.0 / dist ** 3                    # |cos| / d^2 = |(p-q).n| / d^3
    w_dist = 1.0 / dist ** 2
    w_floor = _MIN_DIRECTION * w_dist
    n_off = len(dist)

    dmap = ndi.distance_transform_edt(work)       # T: distance to the nearest source
    grad_t = [np.gradient(dmap, axis=a) if work.shape[a] > 1 else np.zeros_like(dmap)
              for a in range(ndim)]

    pshape = tuple(s + 2 * h for s in work.shape)
    inner = tuple(slice(h, h + s) for s in work.shape)
    strides = np.array([int(np.prod(pshape[a + 1:])) for a in range(ndim)], dtype=np.int64)
    delta = (offs.astype(np.int64) @ strides).astype(np.intp)

    avail = np.zeros(pshape, bool)
    avail[inner] = ~work
    avail = avail.ravel()
    tpad = np.zeros(pshape)
    tpad[inner] = dmap
    tpad = tpad.ravel()
    vals = np.zeros((n_chan,) + pshape)
    vals[(slice(None), *inner)] = img
    vals = vals.reshape(n_chan, -1)
    grads = np.zeros((n_chan, ndim, vals.shape[1]))

    def update_gradients(idx: np.ndarray) -> None:
        # one-sided where only one neighbour is available, central where both are
        for a, s in enumerate(strides):
            ap, am = avail[idx + s], avail[idx - s]
            for c in range(n_chan):
                v0, vp, vm = gvals[c, idx], gvals[c, idx + s], gvals[c, idx - s]
                grads[c, a, idx] = np.where(ap & am, 0.5 * (vp - vm),
                                            np.where(ap, vp - v0, np.where(am, v0 - vm, 0.0)))

    # Gradients are taken on a lightly smoothed copy of the sources (normalised Gaussian
    # over the sources only, which keeps a linear ramp linear): raw one-sided differences
    # of noisy voxels, extrapolated over the radius, would print their noise into the fill.
    gvals = vals.copy()
    src = ~work
    if _GRAD_SIGMA > 0:
        wsrc = ndi.gaussian_filter(src.astype(np.float64), _GRAD_SIGMA, mode="nearest")
        gv = gvals.reshape((n_chan,) + pshape)
        for c in range(n_chan):
            sm = ndi.gaussian_filter(np.where(src, img[c], 0.0), _GRAD_SIGMA, mode="nearest")
            gv[(c, *inner)][src] = sm[src] / wsrc[src]
    update_gradients(np.flatnonzero(avail))

    coords = np.nonzero(work)
    todo = np.ravel_multi_index(tuple(c + h for c in coords), pshape)
    shell = np.ceil(dmap[coords] - 1e-9).astype(np.int64)
    normal = np.stack([g[coords] for g in grad_t], axis=0)
    nlen = np.sqrt((normal ** 2).sum(axis=0))
    # unit normal of the front (grad T); where T is flat (e.g. the centre of a symmetric
    # region) there is no direction and the direction term is 1
    has = nlen > 1e-12
    normal = np.where(has, normal / np.maximum(nlen, 1e-12), 0.0)
    flat_normal = np.zeros((ndim, vals.shape[1]))
    flat_normal[:, todo] = normal
    no_normal = np.zeros(vals.shape[1], bool)
    no_normal[todo] = ~has

    order = np.argsort(shell, kind="stable")
    todo, shell = todo[order], shell[order]
    bounds = np.searchsorted(shell, np.arange(shell.max() + 2), side="left")
    pending = np.empty(0, np.int64)
    k = 1
    while True:
        batch = np.concatenate([pending, todo[bounds[min(k, len(bounds) - 1)]:
                                              bounds[min(k + 1, len(bounds) - 1)]]])
        if batch.size == 0:
            if k >= shell.max():
                break
            k += 1
            continue
        nb = batch[:, None] + delta[None, :]
        ok = avail[nb]
        counts = np.count_nonzero(ok, axis=1)
        flat = np.flatnonzero(ok)                 # only the available neighbours
        row = np.repeat(np.arange(batch.size, dtype=np.int32), counts)
        col = flat - row * n_off
        q = nb.ravel()[flat]
        back_q = [back_t[a].take(col) for a in range(ndim)]
        dot = np.repeat(flat_normal[0].take(batch), counts) * back_q[0]
        for a in range(1, ndim):
            dot += np.repeat(flat_normal[a].take(batch), counts) * back_q[a]
        # w = 1/d^2 * level term * max(|cos|, floor); rows without a normal: direction 1
        w = np.maximum(np.abs(dot) * inv_dist3.take(col), w_floor.take(col))
        flat_rows = no_normal.take(batch)
        if flat_rows.any():
            sel = np.repeat(flat_rows, counts)
            w[sel] = w_dist.take(col[sel])
        lev = np.repeat(tpad.take(batch), counts) - tpad.take(q)
        w /= 1.0 + np.abs(lev)
        wsum = np.bincount(row, w, minlength=batch.size)
        done = wsum > 0
        if done.any():
            idx = batch[done]
            for c in range(n_chan):
                est = vals[c].take(q)
                for a in range(ndim):
                    est += grads[c, a].take(q) * back_q[a]
                num = np.bincount(row, w * est, minlength=batch.size)[done]
                vals[c, idx] = np.clip(num / wsum[done], lo[c], hi[c])
                gvals[c, idx] = vals[c, idx]
            avail[idx] = True
            update_gradients(idx)
        pending = batch[~done]
        if k >= shell.max() and (pending.size == 0 or not done.any()):
            break
        k += 1
    if pending.size:                                   # unreachable: mean of the sources
        for c in range(n_chan):
            vals[c, pending] = img[c][~work].mean(dtype=np.float64)
    rflat = np.ravel_multi_index(tuple(c + h for c in np.nonzero(region)), pshape)
    return vals[:, rflat].astype(np.float32)
