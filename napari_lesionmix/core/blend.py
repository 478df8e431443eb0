"""Blend weights for inserting a lesion: hard and soft masks (populate, step 5).

Hard mode writes the lesion where its mask is set. Soft mode (default) blends
``out = a * lesion + (1 - a) * background`` with ``a`` the mask grown by one voxel and
smoothed by a Gaussian of ``sigma`` voxels, kept at 1 inside the mask: the lesion's own
voxels are copied exactly, and its edge (the partial-volume fringe a real lesion has just
outside its label) is feathered into the new place over about two voxels, instead of
being cut at the label's border.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .morphology import dilate
from .recipe import CHOICES

__all__ = ["blend_weights", "blend"]

BLEND_MODES = CHOICES["populate.blend"]


def blend_weights(mask: np.ndarray, mode: str = "soft", sigma: float = 1.0) -> np.ndarray:
    """Per-voxel weight ``a`` of the lesion when it is inserted.

    Parameters
    ----------
    mask : numpy.ndarray
        Bool lesion mask (any number of dimensions), usually the augmented lesion's patch.
    mode : {"soft", "hard"}
        ``hard``: ``a`` is the mask. ``soft``: the mask grown by one voxel (full
        connectivity), smoothed by a Gaussian of ``sigma`` voxels (zero outside the
        patch), then set to 1 inside the mask.
    sigma : float or sequence of float
        Gaussian sigma in voxels (per axis if a sequence). ``0`` means hard.

    Returns
    -------
    numpy.ndarray
        float32 array of ``mask.shape`` with values in [0, 1]; exactly 1 inside the mask.
        Keep a margin of about ``3 * sigma`` voxels around the mask in the patch so the
        fall-off is not cut by the patch border.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros(7, bool); m[3] = True
    >>> a = blend_weights(m, "soft", 1.0)
    >>> float(a[3]), bool(0 < a[2] < 1), bool(a[2] == a[4])
    (1.0, True, True)
    >>> blend_weights(m, "hard").tolist()
    [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    """
    mask = np.asarray(mask, dtype=bool)
    if mode not in BLEND_MODES:
        raise ValueError(f"blend mode must be 'soft' or 'hard', got {mode!r}")
    sig = np.atleast_1d(np.asarray(sigma, dtype=float))
    if not np.all(np.isfinite(sig)) or np.any(sig < 0):
        raise ValueError(f"blend sigma must be a finite number >= 0, got {sigma!r}")
    hard = mask.astype(np.float32)
    if mode == "hard" or not np.any(sig > 0):
        return hard
    grown = dilate(mask)
    alpha = ndi.gaussian_filter(grown.astype(np.float32), sigma=sigma, mode="constant", cval=0.0)
    np.clip(alpha, 0.0, 1.0, out=alpha)
    alpha[mask] = 1.0
    return alpha


def blend(background: np.ndarray, lesion: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha * lesion + (1 - alpha) * background``, broadcasting ``alpha`` over channels.

    Parameters
    ----------
    background, lesion : numpy.ndarray
        ``(C, *p)`` (or ``(*p)``) arrays of the same shape.
    alpha : numpy.ndarray
        ``(*p)`` weights from :func:`blend_weights`.

    Returns
    -------
    numpy.ndarray
        float32 array of ``background.shape``.

    Examples
    --------
    >>> import numpy as np
    >>> blend(np.zeros((1, 3)), np.ones((1, 3)), np.array([0.0, 0.5, 1.0])).tolist()
    [[0.0, 0.5, 1.0]]
    """
    background = np.asarray(background, dtype=np.float32)
    lesion = np.asarray(lesion, dtype=np.float32)
    alpha = np.asarray(alpha, dtype=np.float32)
    if background.shape != lesion.shape or background.shape[-alpha.ndim:] != alpha.shape:
        raise ValueError(
            f"shapes do not match: background {background.shape}, lesion {lesion.shape}, "
            f"alpha {alpha.shape}")
    return alpha * lesion + (1 - alpha) * background
