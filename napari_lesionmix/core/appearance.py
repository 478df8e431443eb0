"""How a lesion looks against its surroundings: their level, the lesion's contrast to it,
and the fine texture ("grain") of both.

A lesion is moved between places and cases by what a reader sees: its contrast to the
tissue around it and its grain, not its raw intensities. These helpers measure them on
small patches and restore them after resampling (which averages neighbouring voxels and so
lowers both). "Texture" is the standard deviation of the image minus its Gaussian blur
(sigma 1 voxel): white noise of std ``s`` has texture ``residual_gain(ndim) * s``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from .morphology import dilate, erode

__all__ = ["ring_of", "surroundings", "residual", "texture", "residual_gain", "restore",
           "robust_std", "grain_size", "grain_noise", "interior"]

#: Width in voxels of the ring that stands for a lesion's surroundings.
RING = 2


def ring_of(mask: np.ndarray, width: int = RING) -> np.ndarray:
    """The voxels within ``width`` voxels (full connectivity) around ``mask``."""
    return dilate(mask, width) & ~mask


def surroundings(image: np.ndarray, mask: np.ndarray, context: np.ndarray | None = None
                 ) -> np.ndarray | None:
    """Median of each channel over the ring around ``mask`` (``(C,)``), its surroundings.

    ``context`` (bool, the patch's shape) leaves out voxels that are not tissue of the
    case: outside its allowed region, or other lesions. ``None`` when no ring voxel is left.
    """
    ring = ring_of(mask)
    if context is not None:
        ring &= context
    if not ring.any():
        return None
    return np.array([float(np.median(c[ring])) for c in image])


def interior(mask: np.ndarray, least: int = 8) -> np.ndarray:
    """``mask`` without its surface voxels, or ``mask`` itself when fewer than ``least``
    voxels would be left: where a lesion's grain is measured without its edge."""
    inner = erode(mask, "face")
    return inner if np.count_nonzero(inner) >= least else mask


def residual(image: np.ndarray) -> np.ndarray:
    """``image - gaussian(image, 1)`` per channel (float32, the patch's shape)."""
    out = np.empty(image.shape, np.float32)
    for c, chan in enumerate(image):
        chan = np.asarray(chan, np.float32)
        out[c] = chan - ndi.gaussian_filter(chan, 1.0, mode="nearest")
    return out


def texture(image: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Std of ``image - gaussian(image, 1)`` over ``where``, per channel (``(C,)``)."""
    if not where.any():
        return np.zeros(image.shape[0])
    return np.array([float(r[where].std()) for r in residual(image)])


def robust_std(values: np.ndarray) -> float:
    """1.4826 × the median absolute deviation: a std that a few outliers (edges) do not
    inflate. 0 for no values."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


@lru_cache(maxsize=4)
def residual_gain(ndim: int) -> float:
    """Texture of unit white noise: ``sqrt(1 - 2 g0 + sum g^2)`` of the sigma-1 Gaussian."""
    n = 17
    delta = np.zeros((n,) * ndim)
    delta[(n // 2,) * ndim] = 1.0
    g = ndi.gaussian_filter(delta, 1.0)
    return float(np.sqrt(1.0 - 2.0 * g[(n // 2,) * ndim] + (g ** 2).sum()))


def restore(out_img: np.ndarray, out_mask: np.ndarray, contrast: np.ndarray,
            grain: np.ndarray, level: np.ndarray, seed, size=None) -> None:
    """Give a resampled lesion back its donor's contrast and texture, in place.

    Parameters
    ----------
    out_img : (C, *q) float32
        The resampled patch.
    out_mask : (*q) bool
        The resampled lesion.
    contrast : (C,)
        The donor's mean inside its mask minus ``level``.
    grain : (C,)
        The donor's texture inside its mask.
    level : (C,)
        The donor's surroundings.
    seed : int or sequence of int
        Seeds the noise that brings the texture back.
    size : (C, ndim), optional
        The donor's grain size per channel and axis (:func:`grain_size`); default white.

    Notes
    -----
    The lesion's deviation from ``level`` is scaled inside the mask so that its mean
    contrast is the donor's again (the factor kept within [0.5, 2]); then, where the
    texture inside the mask fell below the donor's, noise of the donor's grain size and
    of texture ``sqrt(grain² − now²)`` is added over the whole patch (its context lost its
    grain too).
    """
    if not out_mask.any():
        return
    ndim = out_mask.ndim
    shape = (-1,) + (1,) * ndim
    lvl = np.asarray(level, np.float32).reshape(shape)
    now = out_img[:, out_mask].mean(axis=1) - np.asarray(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(np.sign(now) == np.sign(contrast), contrast / now, 1.0)
    k = np.clip(np.nan_to_num(k, nan=1.0, posinf=1.0, neginf=1.0), 0.5, 2.0)
    if np.any(k != 1.0):
        # a smooth weight (1 deep inside, fading across the edge): scaling with a step at
        # the mask's edge would sharpen it
        w = np.minimum(ndi.gaussian_filter(out_mask.astype(np.float32), 1.0) * 2.0, 1.0)
        wm = w[out_mask].mean()
        k = 1.0 + (k - 1.0) / max(wm, 1e-3)  # the mean over the mask moves by the factor
        gain = (1.0 + (k.reshape(shape) - 1.0) * w).astype(np.float32)
        out_img[:] = lvl + (out_img - lvl) * gain
    now_grain = texture(out_img, interior(out_mask))
    add = np.sqrt(np.maximum(np.asarray(grain) ** 2 - now_grain ** 2, 0.0))
    if np.any(add > 0):
        rng = np.random.default_rng(seed)
        for c in range(out_img.shape[0]):
            sz = np.zeros(ndim) if size is None else np.asarray(size)[c]
            out_img[c] += grain_noise(rng, out_mask.shape, sz, float(add[c]))


#: Lag-1 autocorrelation, along an axis, of the texture residual of white noise smoothed
#: by a Gaussian of sigma voxels (measured on a 96³ field): how grain size shows.
_GRAIN_TABLE = np.array([(-0.066, 0.0), (-0.06, 0.3), (0.004, 0.4), (0.143, 0.5),
                         (0.296, 0.6), (0.422, 0.7), (0.515, 0.8), (0.638, 1.0),
                         (0.718, 1.2), (0.798, 1.5)])


def grain_size(resid: np.ndarray, where: np.ndarray, least: int = 30) -> np.ndarray:
    """Per axis, the sigma (voxels) of the Gaussian that, smoothing white noise, gives the
    residual field ``resid`` its correlation between neighbours inside ``where``.

    0 (white) along an axis with fewer than ``least`` neighbouring pairs in ``where``.
    """
    out = np.zeros(resid.ndim)
    for k in range(resid.ndim):
        n = resid.shape[k]
        a = [slice(None)] * resid.ndim
        b = [slice(None)] * resid.ndim
        a[k], b[k] = slice(0, n - 1), slice(1, n)
        both = where[tuple(a)] & where[tuple(b)]
        if np.count_nonzero(both) < least:
            continue
        x, y = resid[tuple(a)][both], resid[tuple(b)][both]
        if x.std() == 0 or y.std() == 0:
            continue
        rho = float(np.corrcoef(x, y)[0, 1])
        out[k] = float(np.interp(rho, _GRAIN_TABLE[:, 0], _GRAIN_TABLE[:, 1]))
    return out


def grain_noise(rng: np.random.Generator, shape, sigma, texture_std: float) -> np.ndarray:
    """Noise over ``shape`` with grain ``sigma`` (voxels, per axis; see :func:`grain_size`)
    whose texture (high-pass residual std) is ``texture_std`` (float32)."""
    noise = rng.standard_normal(shape).astype(np.float32)
    sigma = np.broadcast_to(np.asarray(sigma, float), (len(shape),))
    if np.any(sigma > 0):
        noise = ndi.gaussian_filter(noise, sigma, mode="wrap")
    resid = noise - ndi.gaussian_filter(noise, 1.0, mode="wrap")
    scale = float(resid.std())
    return noise * np.float32(texture_std / scale) if scale > 0 else noise * 0


def quiet_std(values: np.ndarray) -> float:
    """The std of the quietest part of ``values``: the 25th percentile of ``|x - median|``
    divided by its value for a normal distribution (0.3186). Edges and structure only add
    large deviations, so up to three quarters of the values may be such without raising
    it; on pure noise it is the std. 0 for no values."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return 0.0
    return float(np.percentile(np.abs(values - np.median(values)), 25) / 0.3186)
