"""Per-lesion spatial and intensity transforms: sample the parameters, then apply them.

LesionMix augments every lesion it inserts (docs/engine.md, "Transforms"): flips, rotations,
an isotropic resize, an optional elastic deformation, brightness and Gaussian noise.
Sampling and applying are two separate steps, as in TorchIO's random transforms:

1. :func:`sample_params` draws a frozen, JSON-ready :class:`LesionParams` from a
   ``numpy.random.Generator`` and a :class:`~napari_lesionmix.core.recipe.PopulateOptions`;
2. :func:`augment` applies those parameters to a lesion's small image and mask patch,
   deterministically. Provenance records the parameters; replay calls :func:`augment`
   again with them.

Every spatial operation is composed into one affine map (plus an optional elastic
displacement) and evaluated with one :func:`scipy.ndimage.map_coordinates` call per
channel, on the lesion's own patch, never on a full volume.

Conventions
-----------
Arrays are in numpy order: ``(z, y, x)`` in 3D, ``(y, x)`` in 2D; images carry a leading
channel axis. Rotations are given in degrees. In 3D, ``rotate[k]`` is a rotation *about*
array axis ``k``, i.e. in the plane of the two other axes ``(i, j)``, ``i < j``, with the
matrix ``[[cos, -sin], [sin, cos]]`` acting on ``(i, j)``; the three rotations are applied
in the order axis 0, then axis 1, then axis 2 (``R = R2 @ R1 @ R0``). In 2D the single
angle rotates the ``(0, 1)`` plane the same way.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from .appearance import interior, surroundings, texture
from .appearance import restore as restore_appearance

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .recipe import PopulateOptions

__all__ = ["LesionParams", "sample_params", "augment", "affine_matrix"]

#: spline order of each ``populate.interpolation`` (``recipe.CHOICES`` lists the same names)
_ORDERS = {"linear": 1, "cubic": 3}

#: Signed distance maps of lesion masks already computed, by the mask's bytes and spacing:
#: a bank lesion is augmented again and again, its mask never changes. Bounded in bytes.
_SDF_CACHE: OrderedDict = OrderedDict()
_SDF_CACHE_BYTES = 16 * 2**20


def _signed_distance(mask: np.ndarray, sp: np.ndarray) -> np.ndarray:
    """``edt(~mask) - edt(mask)`` in mm (negative inside), float32, read-only; computed once
    per mask and spacing (the most recent ones are kept, up to ``_SDF_CACHE_BYTES``)."""
    key = (mask.shape, np.packbits(mask, axis=None).tobytes(), tuple(float(v) for v in sp))
    sdf = _SDF_CACHE.get(key)
    if sdf is not None:
        _SDF_CACHE.move_to_end(key)
        return sdf
    sdf = (ndi.distance_transform_edt(~mask, sampling=sp)
           - ndi.distance_transform_edt(mask, sampling=sp)).astype(np.float32)
    sdf.flags.writeable = False
    if sdf.nbytes <= _SDF_CACHE_BYTES:
        _SDF_CACHE[key] = sdf
        total = sum(v.nbytes for v in _SDF_CACHE.values())
        while total > _SDF_CACHE_BYTES:
            total -= _SDF_CACHE.popitem(last=False)[1].nbytes
    return sdf


def _check_ranges(p: LesionParams) -> None:
    """ValueError naming the field when a value lies outside what any valid recipe can
    draw (parameters read from a file, e.g. a provenance sidecar, are not trusted)."""
    from .recipe import BOUNDS

    checks = [("scale", p.scale, *BOUNDS["populate.scale"]),
              ("elastic_sigma", p.elastic_sigma, 0.0, BOUNDS["populate.elastic_sigma"][1]),
              ("elastic_magnitude", p.elastic_magnitude, *BOUNDS["populate.elastic_magnitude"]),
              ("brightness", p.brightness, *BOUNDS["populate.brightness"]),
              ("noise_std", p.noise_std, *BOUNDS["populate.noise_std"])]
    checks += [("rotate", a, -360.0, 360.0) for a in p.rotate]
    for name, value, lo, hi in checks:
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ValueError(f"LesionParams: {name} {value!r} is outside [{lo}, {hi}]")
    for name, seed in (("elastic_seed", p.elastic_seed), ("noise_seed", p.noise_seed)):
        if not 0 <= seed < 2**64:
            raise ValueError(f"LesionParams: {name} {seed!r} is not a seed (0 .. 2**64 - 1)")


def _n_rotations(ndim: int) -> int:
    if ndim == 2:
        return 1
    if ndim == 3:
        return 3
    raise ValueError(f"only 2D and 3D lesions are supported, got ndim={ndim}")


@dataclass(frozen=True)
class LesionParams:
    """The drawn parameters of one lesion augmentation (frozen and JSON-ready).

    Parameters
    ----------
    flip : tuple of bool
        Flip each array axis (numpy order).
    rotate : tuple of float
        Angles in degrees. 3D: three angles, about array axes 0, 1 and 2 (applied in that
        order); 2D: one angle.
    scale : float
        Isotropic resize factor (1 = unchanged).
    elastic_sigma : float
        Gaussian sigma, in voxels, of the smoothed random displacement field; 0 turns the
        elastic deformation off.
    elastic_magnitude : float
        Largest displacement of the elastic field, in voxels.
    elastic_seed : int
        Seed that regenerates the elastic displacement field.
    brightness : float
        Multiplicative intensity factor (1 = unchanged).
    noise_std : float
        Std of the additive Gaussian noise in normalised (z-score) units; 0 = none.
    noise_seed : int
        Seed that regenerates the noise.

    Examples
    --------
    >>> p = LesionParams.identity(3)
    >>> p.scale, p.rotate
    (1.0, (0.0, 0.0, 0.0))
    >>> LesionParams.from_dict(p.to_dict()) == p
    True
    """

    flip: tuple[bool, ...]
    rotate: tuple[float, ...]
    scale: float
    elastic_sigma: float
    elastic_magnitude: float
    elastic_seed: int
    brightness: float
    noise_std: float
    noise_seed: int

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (the length of ``flip``)."""
        return len(self.flip)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (tuples become lists).

        Examples
        --------
        >>> LesionParams.identity(2).to_dict()["flip"]
        [False, False]
        """
        d = asdict(self)
        d["flip"] = [bool(v) for v in self.flip]
        d["rotate"] = [float(v) for v in self.rotate]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LesionParams:
        """Build parameters from :meth:`to_dict` output; raise ``ValueError`` naming a bad key.

        Examples
        --------
        >>> d = LesionParams.identity(2).to_dict()
        >>> LesionParams.from_dict(d).flip
        (False, False)
        """
        if not isinstance(d, dict):
            raise ValueError(f"LesionParams: expected a dict, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"LesionParams: unknown field(s) {', '.join(unknown)}")
        missing = [n for n in names if n not in d]
        if missing:
            raise ValueError(f"LesionParams: missing field(s) {', '.join(missing)}")
        try:
            flip = tuple(bool(v) for v in d["flip"])
            rotate = tuple(float(v) for v in d["rotate"])
            params = cls(
                flip=flip,
                rotate=rotate,
                scale=float(d["scale"]),
                elastic_sigma=float(d["elastic_sigma"]),
                elastic_magnitude=float(d["elastic_magnitude"]),
                elastic_seed=int(d["elastic_seed"]),
                brightness=float(d["brightness"]),
                noise_std=float(d["noise_std"]),
                noise_seed=int(d["noise_seed"]),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"LesionParams: bad value ({exc})") from None
        if len(rotate) != _n_rotations(len(flip)):
            raise ValueError(
                f"LesionParams: rotate has {len(rotate)} angle(s), expected "
                f"{_n_rotations(len(flip))} for {len(flip)}D")
        _check_ranges(params)
        return params

    @classmethod
    def identity(cls, ndim: int) -> LesionParams:
        """Parameters that leave a lesion unchanged.

        Examples
        --------
        >>> LesionParams.identity(2).rotate
        (0.0,)
        """
        return cls(
            flip=(False,) * ndim,
            rotate=(0.0,) * _n_rotations(ndim),
            scale=1.0,
            elastic_sigma=0.0,
            elastic_magnitude=0.0,
            elastic_seed=0,
            brightness=1.0,
            noise_std=0.0,
            noise_seed=0,
        )


def _maybe(rng: np.random.Generator, p: float, bounds, off: float) -> float:
    """Draw ``u`` then ``v ~ U[bounds]`` (always both); ``v`` if ``u < p`` else ``off``."""
    use = rng.random() < p
    value = float(rng.uniform(*bounds))
    return value if use else off


def sample_params(rng: np.random.Generator, options: PopulateOptions, ndim: int) -> LesionParams:
    """Draw the augmentation parameters of one lesion.

    The draws happen in a fixed order and their number never depends on the outcomes
    (a value is drawn even when its transform is switched off), so the generator's
    stream after this call is the same for every outcome. The order is:

    1. flips: for each axis ``k = 0..ndim-1``, ``u = rng.random()``; flip if
       ``u < flip_p``;
    2. rotations: for each rotation (1 in 2D, 3 in 3D, about axes 0, 1, 2):
       ``u = rng.random()``, ``angle = rng.uniform(*rotate_deg)``, ``s = rng.random()``;
       the angle is used if ``u < rotate_p`` (else 0) and negated if ``s < 0.5``;
    3. scale: ``u = rng.random()``, ``v = rng.uniform(*scale)``; ``v`` if ``u < scale_p``
       else 1;
    4. elastic: ``u``, ``sigma = rng.uniform(*elastic_sigma)``; sigma if
       ``u < elastic_p`` else 0 (the magnitude is ``options.elastic_magnitude``, or 0
       when off);
    5. brightness: ``u``, ``v = rng.uniform(*brightness)``; ``v`` if ``u < brightness_p``
       else 1;
    6. noise: ``u``, ``v = rng.uniform(*noise_std)``; ``v`` if ``u < noise_p`` else 0;
    7. ``elastic_seed = rng.integers(2**63)``, then ``noise_seed = rng.integers(2**63)``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random stream (never global state).
    options : PopulateOptions
        Ranges and probabilities (``recipe.populate``).
    ndim : int
        2 or 3.

    Returns
    -------
    LesionParams

    Examples
    --------
    >>> import numpy as np
    >>> from napari_lesionmix.core.recipe import PopulateOptions
    >>> p = sample_params(np.random.default_rng(0), PopulateOptions(), 3)
    >>> p == sample_params(np.random.default_rng(0), PopulateOptions(), 3)
    True
    >>> len(p.flip), len(p.rotate)
    (3, 3)
    """
    n_rot = _n_rotations(ndim)
    o = options

    flip = tuple(bool(rng.random() < o.flip_p) for _ in range(ndim))

    rotate = []
    for _ in range(n_rot):
        use = rng.random() < o.rotate_p
        angle = float(rng.uniform(*o.rotate_deg))
        negative = rng.random() < 0.5
        rotate.append((-angle if negative else angle) if use else 0.0)

    scale = _maybe(rng, o.scale_p, o.scale, 1.0)
    elastic_sigma = _maybe(rng, o.elastic_p, o.elastic_sigma, 0.0)  # the range starts >= 0.1
    elastic_magnitude = float(o.elastic_magnitude) if elastic_sigma else 0.0
    brightness = _maybe(rng, o.brightness_p, o.brightness, 1.0)
    noise_std = _maybe(rng, o.noise_p, o.noise_std, 0.0)

    elastic_seed = int(rng.integers(2**63))
    noise_seed = int(rng.integers(2**63))

    return LesionParams(
        flip=flip,
        rotate=tuple(rotate),
        scale=scale,
        elastic_sigma=elastic_sigma,
        elastic_magnitude=elastic_magnitude,
        elastic_seed=elastic_seed,
        brightness=brightness,
        noise_std=noise_std,
        noise_seed=noise_seed,
    )


def _rotation(angle_deg: float, ndim: int, i: int, j: int) -> np.ndarray:
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    r = np.eye(ndim)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def affine_matrix(params: LesionParams, spacing=None, target_spacing=None) -> np.ndarray:
    """The linear part, in array index space, of a lesion's spatial transform.

    ``A = scale * S^-1 R S F`` with ``F`` the flips, ``R`` the rotation in physical space
    and ``S = diag(spacing)``, so the rotation is physically correct on anisotropic
    voxels. A point ``x`` (index coordinates) maps to ``A (x - c) + c'``.

    Parameters
    ----------
    params : LesionParams
    spacing : sequence of float, optional
        Voxel spacing in array order (mm). ``None`` means isotropic.
    target_spacing : sequence of float, optional
        Spacing of the grid the lesion goes to, when it differs from ``spacing``: the
        matrix becomes ``scale * T^-1 R S F`` (``T = diag(target_spacing)``), so the
        lesion keeps its physical size on the new grid.

    Returns
    -------
    numpy.ndarray
        ``(ndim, ndim)`` float64 matrix.

    Examples
    --------
    >>> p = LesionParams.identity(2)
    >>> affine_matrix(p).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    ndim = params.ndim
    if len(params.rotate) != _n_rotations(ndim):
        raise ValueError(
            f"params.rotate has {len(params.rotate)} angle(s); {ndim}D needs "
            f"{_n_rotations(ndim)}")
    if ndim == 2:
        rot = _rotation(params.rotate[0], 2, 0, 1)
    else:
        rot = np.eye(3)
        for k, angle in enumerate(params.rotate):  # about axis 0, then 1, then 2
            if angle:
                i, j = (a for a in range(3) if a != k)
                rot = _rotation(angle, 3, i, j) @ rot
    if spacing is not None or target_spacing is not None:
        sp = _spacing(spacing, ndim, "spacing")
        tsp = sp if target_spacing is None else _spacing(target_spacing, ndim, "target_spacing")
        rot = (rot / tsp[:, None]) * sp[None, :]  # T^-1 R S
    flips = np.where(np.asarray(params.flip, dtype=bool), -1.0, 1.0)
    return float(params.scale) * rot * flips[None, :] + 0.0  # no negative zeros


def _spacing(value, ndim: int, name: str) -> np.ndarray:
    sp = np.ones(ndim) if value is None else np.asarray(value, dtype=float)
    if sp.shape != (ndim,) or not np.all(sp > 0):
        raise ValueError(f"{name} must be {ndim} positive numbers, got {value!r}")
    return sp


def _elastic_field(seed: int, sigma: float, magnitude: float, shape: tuple) -> np.ndarray:
    """Displacement field ``(ndim, *shape)``: Gaussian-smoothed white noise per axis.

    Equal to ``gaussian_filter(default_rng(seed).standard_normal(shape), sigma)`` for each
    axis in turn (same stream, default ``reflect`` boundary), computed as separable
    matrix products (each 1D filter is a small dense matrix built by filtering the
    identity), which is much faster than direct convolution for sigmas of several voxels
    on lesion-sized patches. Scaled so that the largest |displacement| is ``magnitude``.
    """
    ndim = len(shape)
    rng = np.random.default_rng(seed)
    field = rng.standard_normal((ndim, *shape)).astype(np.float32)
    for k, n in enumerate(shape):
        # Column j of m is the filtered unit vector e_j, so m @ v == gaussian_filter1d(v).
        # The products are batched so that each BLAS call is small (n x n by n x last):
        # small calls run single-threaded, and multithreaded BLAS stalls badly on small
        # products when the cores are busy (e.g. with batch workers).
        m = ndi.gaussian_filter1d(np.eye(n, dtype=np.float32), sigma, axis=0)
        if k == ndim - 1:
            field = np.matmul(field, m.T)
        else:
            moved = np.moveaxis(field, k + 1, -2)
            field = np.moveaxis(np.matmul(m, moved), -2, k + 1)
    field = np.ascontiguousarray(field)
    peak = float(np.max(np.abs(field)))
    if peak > 0:
        field *= magnitude / peak
    return field


def _infer_margin(mask: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> int:
    before = lo
    after = np.asarray(mask.shape) - 1 - hi
    return int(max(before.max(), after.max()))


def augment(
    image: np.ndarray,
    mask: np.ndarray,
    params: LesionParams,
    interpolation: str = "linear",
    stats: np.ndarray | None = None,
    *,
    spacing=None,
    margin: int | None = None,
    target_spacing=None,
    mask_interpolation: str = "distance",
    brightness: str = "raw",
    level=None,
    restore: bool = False,
    donor=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply drawn parameters to one lesion's image and mask patch (deterministic).

    Flip, rotation and resize are composed into one affine map about the mask's centroid
    (rounded to a voxel, so flips and right-angle rotations sample exactly on the grid),
    plus the optional elastic displacement, and evaluated with one
    :func:`scipy.ndimage.map_coordinates` call per channel and one for the mask. The output
    grid is sized from the transformed mask voxels (a bound that always holds the
    transformed mask) plus the elastic magnitude and the margin, then cropped to the
    transformed mask's bounding box plus ``margin`` voxels of context.

    Outside the input patch the image is extended by its nearest values (plausible
    context) and the mask by 0. The mask is resampled through its signed distance map
    (``mask_interpolation="distance"``: the distance in mm to the lesion's surface,
    negative inside, interpolated linearly and cut at 0; shape-based interpolation, so a
    lesion from thick slices is rounded between them, not a stack of slabs) or linearly
    and thresholded at 0.5 (``"linear"``). Both give the input mask back under the
    identity. Cubic image interpolation uses scipy's spline prefilter (with the same
    ``nearest`` boundary) and is clipped to each channel's input range to remove
    overshoot. Brightness multiplies the raw intensities or scales the lesion's contrast
    (``brightness``), after the optional restoration (``restore``); the noise is
    ``N(0, (noise_std * std_c)^2)`` per channel when ``stats`` is given, else
    ``N(0, noise_std^2)``, drawn from ``default_rng(noise_seed)`` over the output patch.

    Parameters
    ----------
    image : numpy.ndarray
        ``(C, *p)`` float image patch.
    mask : numpy.ndarray
        ``(*p)`` bool lesion mask.
    params : LesionParams
        From :func:`sample_params` (or a provenance record).
    interpolation : {"linear", "cubic"}
        Image interpolation (spline order 1 or 3).
    stats : numpy.ndarray, optional
        ``(C, 2)`` mean and std of the lesion's source case, per channel: the noise std is
        in these normalised units.
    spacing : sequence of float, optional
        Voxel spacing in array order; makes rotations physically correct on anisotropic
        grids (the index-space matrix is ``S^-1 R S``). ``None`` means isotropic.
    target_spacing : sequence of float, optional
        Spacing (array order) of the case the lesion goes to; the output patch is on that
        grid, so the lesion keeps its physical size. ``None``: the source's grid.
    mask_interpolation : {"distance", "linear"}
        How the mask is resampled (see above).
    brightness : {"raw", "contrast"}
        ``raw`` (the paper's) multiplies the intensities by ``params.brightness``;
        ``contrast`` scales the lesion's difference to its surroundings (``level``), so the
        factor means the same in every modality.
    level : sequence of float, optional
        The lesion's surroundings per channel (:func:`.appearance.surroundings` of the
        source case, which knows what is tissue); default: the ring around the mask in
        the patch.
    restore : bool
        Give the resampled lesion back the mean contrast to ``level`` and the texture it
        had in the patch (:func:`.appearance.restore`; resampling averages neighbouring
        voxels, which lowers both).
    donor : (contrast, grain[, size]), optional
        The lesion's contrast to ``level``, its texture away from its edge and its grain
        size, per channel, when known (a bank entry's
        :attr:`~.lesions.BankEntry.appearance`); default: measured on the patch (white
        grain).
    margin : int, optional
        Context voxels kept around the transformed mask. ``None`` infers it from the input:
        the largest distance between the mask's bounding box and the patch border (the
        bank's margin, even when the patch was clipped at a volume border on one side).

    Returns
    -------
    image : numpy.ndarray
        ``(C, *q)`` float32.
    mask : numpy.ndarray
        ``(*q)`` bool. When the mask is empty (an empty input, or a tiny lesion shrunk
        away), the result is an all-False mask of shape ``(1,) * ndim`` and a zero image of
        shape ``(C, 1, ...)``: callers treat an empty mask as "does not fit".

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((12, 12, 12), bool); mask[3:9, 3:9, 3:9] = True
    >>> image = np.where(mask, 2.0, 1.0).astype(np.float32)[None]
    >>> img2, mask2 = augment(image, mask, LesionParams.identity(3))
    >>> bool((mask2 == mask).all()), bool(np.allclose(img2, image))
    (True, True)
    >>> p = LesionParams.identity(3)
    >>> from dataclasses import replace
    >>> img3, mask3 = augment(image, mask, replace(p, scale=2.0))
    >>> bool(6 < mask3.sum() / mask.sum() < 10)
    True
    """
    image = np.asarray(image)
    mask = np.asarray(mask, dtype=bool)
    ndim = mask.ndim
    _n_rotations(ndim)
    if image.ndim != ndim + 1 or image.shape[1:] != mask.shape:
        raise ValueError(
            f"image must be (C, *mask.shape) = (C, {', '.join(map(str, mask.shape))}), "
            f"got {image.shape}")
    if params.ndim != ndim:
        raise ValueError(f"params are for {params.ndim}D, the lesion is {ndim}D")
    if interpolation not in _ORDERS:
        raise ValueError(f"interpolation must be one of {', '.join(map(repr, _ORDERS))}, "
                         f"got {interpolation!r}")
    if brightness not in ("raw", "contrast"):
        raise ValueError(f"brightness must be 'raw' or 'contrast', got {brightness!r}")
    if mask_interpolation not in ("distance", "linear"):
        raise ValueError(f"mask_interpolation must be 'distance' or 'linear', got "
                         f"{mask_interpolation!r}")
    n_ch = image.shape[0]
    if stats is not None:
        stats = np.asarray(stats, dtype=float)
        if stats.shape != (n_ch, 2):
            raise ValueError(f"stats must have shape ({n_ch}, 2), got {stats.shape}")

    def empty() -> tuple[np.ndarray, np.ndarray]:
        return (np.zeros((n_ch,) + (1,) * ndim, np.float32), np.zeros((1,) * ndim, bool))

    pts = np.argwhere(mask)  # (N, ndim) voxel centres of the mask
    if len(pts) == 0:
        return empty()
    lo_in, hi_in = pts.min(axis=0), pts.max(axis=0)
    if margin is None:
        margin = _infer_margin(mask, lo_in, hi_in)
    margin = int(margin)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")

    a = affine_matrix(params, spacing, target_spacing)
    a_inv = np.linalg.inv(a)
    centre = np.round(pts.mean(axis=0))  # rounded centroid: fixed point of the map

    # Bound of the transformed mask. An output voxel y is in the mask only if its sample
    # point x = A^-1 (y + d - c) + c lies within L-inf distance 1 of a mask voxel centre v
    # (linear interpolation > 0.5 needs one mask corner), so y lies in A (v - c) + c
    # +- sum_j |A_ij| +- |d|_max on each axis i.
    fwd = (pts - centre) @ a.T + centre
    reach = np.abs(a).sum(axis=1)
    elastic = params.elastic_sigma > 0 and params.elastic_magnitude > 0
    pad = reach + (params.elastic_magnitude if elastic else 0.0)
    lo = np.floor(fwd.min(axis=0) - pad).astype(int) - margin
    hi = np.ceil(fwd.max(axis=0) + pad).astype(int) + margin
    out_shape = tuple(int(v) for v in hi - lo + 1)

    # Sample coordinates in the input patch: x = A^-1 (z + d(z) - c) + c, z = lo + index.
    axes = [np.arange(lo[k], hi[k] + 1, dtype=float) - centre[k] for k in range(ndim)]
    shaped = [ax.reshape([-1 if k == j else 1 for j in range(ndim)]) for k, ax in enumerate(axes)]
    if elastic:
        grid = _elastic_field(params.elastic_seed, params.elastic_sigma,
                              params.elastic_magnitude, out_shape).astype(float)
        for j in range(ndim):
            grid[j] += shaped[j]
    else:
        grid = shaped  # broadcasts
    # On a grid of another voxel size, align voxel edges rather than centres (a centre
    # alignment loses half an output voxel on each side of the lesion).
    shift = np.zeros(ndim) if target_spacing is None else 0.5 * (
        _spacing(target_spacing, ndim, "target_spacing") / _spacing(spacing, ndim, "spacing") - 1)
    coords = np.empty((ndim, *out_shape), dtype=float)
    for i in range(ndim):  # elementwise, no BLAS (see _elastic_field)
        coords[i] = centre[i] + shift[i]
        for j in range(ndim):
            if a_inv[i, j] != 0.0:
                coords[i] += a_inv[i, j] * grid[j]

    if mask_interpolation == "distance":
        # shape-based interpolation: the signed distance to the lesion's surface (mm,
        # negative inside) is interpolated and cut at 0, so a lesion from thick slices
        # comes out rounded between them instead of as a stack of slabs
        sp = _spacing(spacing, ndim, "spacing")
        sdf = _signed_distance(mask, sp)
        mask_f = ndi.map_coordinates(sdf, coords, order=1, mode="constant",
                                     cval=float(sp.sum()), output=np.float32)
        out_mask = mask_f < 0
    else:
        mask_f = ndi.map_coordinates(mask.astype(np.float32), coords, order=1,
                                     mode="constant", cval=0.0, output=np.float32)
        out_mask = mask_f > 0.5
    if not out_mask.any():
        return empty()

    # Crop to the transformed mask's bounding box plus the margin (always inside the grid).
    crop = []
    for k in range(ndim):
        other = tuple(j for j in range(ndim) if j != k)
        idx = np.flatnonzero(out_mask.any(axis=other))
        crop.append(slice(max(idx[0] - margin, 0), min(idx[-1] + margin + 1, out_shape[k])))
    crop = tuple(crop)
    coords = coords[(slice(None),) + crop]
    out_mask = out_mask[crop]

    order = _ORDERS[interpolation]
    out_img = np.empty((n_ch, *out_mask.shape), dtype=np.float32)
    for ch in range(n_ch):
        src = np.asarray(image[ch], dtype=np.float32)
        ndi.map_coordinates(src, coords, output=out_img[ch], order=order,
                            mode="nearest", prefilter=order > 1)
        if order > 1:  # cubic splines overshoot at edges: keep the source's range
            np.clip(out_img[ch], src.min(), src.max(), out=out_img[ch])

    if (restore or brightness == "contrast") and level is None:
        level = surroundings(image, mask)
        if level is None:
            level = np.array([float(np.median(c)) for c in image])
    if restore:
        level = np.asarray(level, float)
        if donor is None:
            donor = (image[:, mask].mean(axis=1) - level, texture(image, interior(mask)))
        restore_appearance(out_img, out_mask, donor[0], donor[1], level, [params.noise_seed, 1],
                           donor[2] if len(donor) > 2 else None)
    if params.brightness != 1.0:
        if brightness == "contrast":  # scale the lesion's contrast to its surroundings
            lvl = np.asarray(level, np.float32).reshape((n_ch,) + (1,) * ndim)
            out_img[:] = lvl + (out_img - lvl) * np.float32(params.brightness)
        else:                         # the paper's: scale the raw intensities
            out_img *= np.float32(params.brightness)
    if params.noise_std > 0:
        std = np.full(n_ch, params.noise_std)
        if stats is not None:
            std = std * stats[:, 1]
        noise = np.random.default_rng(params.noise_seed).standard_normal(out_img.shape)
        out_img += (noise * std.reshape((n_ch,) + (1,) * ndim)).astype(np.float32)

    return out_img, out_mask
