"""Generate the bundled sample datasets (synthetic, nnU-Net v2 raw layout).

Two datasets:

``brain_mr``
    MS-like T1-weighted brain MR. Each subject is the MNI ICBM152 2009 T1 template
    (shipped inside the nilearn wheel, so this works offline) under a random affine and
    smooth B-spline warp, with irregular hypointense white-matter lesions placed mostly
    around the lateral ventricles, a smooth multiplicative bias field and Rician noise.
    Label 1 = lesion.
``liver_ct``
    Abdominal CT in Hounsfield units, drawn from scratch: body, fat, muscle wall, spine,
    aorta, IVC, kidneys, a liver with contrast-filled vessels (label 1) and hypodense
    tumours (label 2).

Everything is deterministic for a given seed: case ``i`` of a dataset draws from
``numpy.random.SeedSequence([seed, dataset_code, i])``, so a case does not depend on how
many cases are generated alongside it. Each dataset gets its ``lesionmix_recipe.json``
(:func:`sample_recipe`). The brain can have a second, FLAIR-like channel
(``--channels t1,flair``: CSF suppressed, grey matter brighter than white matter, the same
lesions hyperintense), drawn from its own stream so that the T1 and the labels do not
change; the template's tissue classes warped like each subject (``--tissue``, for
measurements); and float32 voxels (``--dtype float32``, as after bias-field correction).

Run ``python -m napari_lesionmix.sample_data --help`` for the command line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi
from scipy.spatial.transform import Rotation

from napari_lesionmix.core.io_utils import atomic_path, atomic_write_text, channel_file
from napari_lesionmix.core.recipe import DATASET_RECIPE_FILE, Recipe

HERE = Path(__file__).resolve().parent
BRAIN_DIR = "brain_mr"
LIVER_DIR = "liver_ct"
DEFAULT_SEED = 0
#: target lesion loads (ml) of brain subjects 1..6 (each times U[0.9, 1.1]); later
#: subjects draw log-uniformly from [0.5, 20] ml
BRAIN_LOADS_ML = (3.0, 0.6, 12.0, 1.5, 20.0, 6.0)
TEMPLATE_FILES = {
    k: f"mni_icbm152_{k}_tal_nlin_sym_09a_converted.nii.gz" for k in ("t1", "gm", "wm")
}
_BRAIN_CODE, _LIVER_CODE, _FLAIR_CODE = 1, 2, 3
CHANNEL_NAMES = {"t1": "T1", "flair": "FLAIR", "ct": "CT"}
#: T1 template intensities (0..255 in the file) are multiplied by this
_T1_SCALE = 4.0


# ----------------------------------------------------------------------------- helpers
def case_rng(seed: int, dataset_code: int, index: int) -> np.random.Generator:
    """Random generator of one case, independent of how many cases are made.

    Parameters
    ----------
    seed : int
        The user's seed.
    dataset_code : int
        1 for the brain dataset, 2 for the liver dataset.
    index : int
        0-based case index.

    Returns
    -------
    numpy.random.Generator
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), dataset_code, index]))


def template_dir() -> Path:
    """Folder of nilearn's bundled MNI ICBM152 2009 template files.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ModuleNotFoundError
        If nilearn is not installed (``pip install nilearn``, or the ``samples`` extra).
    """
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the brain sample needs the MNI ICBM152 template shipped with nilearn: "
            "pip install nilearn (or napari-lesionmix[samples])"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    missing = [f for f in TEMPLATE_FILES.values() if not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(f"{folder}: nilearn's template files are missing: {missing}")
    return folder


def _smooth_noise(rng, shape, sigma_vox) -> np.ndarray:
    """Gaussian-smoothed white noise rescaled to unit standard deviation."""
    n = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox)
    return n / (n.std() + 1e-12)


def irregular_blob(rng, radius_mm, spacing_zyx, roughness=0.35):
    """A random irregular blob: a rotated ellipsoid whose surface is perturbed by noise.

    Parameters
    ----------
    rng : numpy.random.Generator
    radius_mm : float
        Mean radius; the three semi-axes are ``radius_mm * U[0.6, 1.5]``.
    spacing_zyx : sequence of float
        Voxel size in array order (mm).
    roughness : float
        Amplitude of the smoothed noise added to the normalised ellipsoid radius.

    Returns
    -------
    blob : numpy.ndarray of bool
        The blob's largest connected component, in a patch of odd size per axis.
    half : numpy.ndarray of int
        Half-size of the patch; the blob's nominal centre is at index ``half``.
    """
    sp = np.asarray(spacing_zyx, float)
    axes = radius_mm * rng.uniform(0.6, 1.5, 3)
    rot = Rotation.random(random_state=rng).as_matrix()
    half = np.ceil(1.6 * axes.max() / sp).astype(int) + 1
    axes_mm = [np.arange(-h, h + 1) * s for h, s in zip(half, sp, strict=True)]
    grids = np.meshgrid(*axes_mm, indexing="ij")
    pts = np.stack(grids, axis=-1) @ rot
    rho = np.sqrt(((pts / axes) ** 2).sum(-1))
    noise = _smooth_noise(rng, rho.shape, np.maximum(0.35 * axes.min() / sp, 0.7))
    blob = rho + roughness * noise < 1.0
    lab, n = ndi.label(blob)
    if n > 1:
        blob = lab == (1 + np.argmax(ndi.sum(blob, lab, range(1, n + 1))))
    return blob, half


def _patch(center, half, shape):
    """Volume slices and patch slices of a patch centred at ``center``, clipped."""
    vol, pat = [], []
    for c, h, n in zip(center, half, shape, strict=True):
        lo, hi = int(c) - h, int(c) + h + 1
        vol.append(slice(max(lo, 0), min(hi, n)))
        pat.append(slice(max(lo, 0) - lo, 2 * h + 1 - (hi - min(hi, n))))
    return tuple(vol), tuple(pat)


def _weighted_choice(rng, flat_idx, weights):
    cdf = np.cumsum(weights, dtype=np.float64)
    return flat_idx[min(np.searchsorted(cdf, rng.uniform(0, cdf[-1])), len(flat_idx) - 1)]


def _image(array, spacing, origin, direction) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(tuple(float(s) for s in spacing))
    img.SetOrigin(tuple(float(o) for o in origin))
    img.SetDirection(tuple(float(d) for d in direction))
    return img


def write_nifti(img: sitk.Image, path: Path, overwrite: bool = False) -> None:
    """Write an image atomically (temporary name, then rename), gzip-compressed.

    Parameters
    ----------
    img : SimpleITK.Image
    path : pathlib.Path
        Final file name (``.nii.gz``).
    overwrite : bool
        Refuse to replace an existing file unless True.
    """
    with atomic_path(path, overwrite=overwrite) as tmp:
        sitk.WriteImage(img, str(tmp), True)


def count_lesions(mask: np.ndarray, min_voxels: int = 3) -> int:
    """Connected components (26-connectivity) of at least ``min_voxels`` voxels.

    Parameters
    ----------
    mask : numpy.ndarray of bool
    min_voxels : int

    Returns
    -------
    int
    """
    lab, n = ndi.label(mask, structure=np.ones((3,) * mask.ndim))
    if n == 0:
        return 0
    return int((np.bincount(lab.ravel())[1:] >= min_voxels).sum())


# ------------------------------------------------------------------------------- brain
def _random_warp(ref: sitk.Image, rng, max_mm: float = 4.0) -> sitk.Transform:
    """Small random affine (±3°, ±5 % per axis) composed with a smooth B-spline warp."""
    centre = ref.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in ref.GetSize()])
    aff = sitk.AffineTransform(3)
    aff.SetCenter(centre)
    rot = Rotation.from_euler("xyz", rng.uniform(-3, 3, 3), degrees=True).as_matrix()
    aff.SetMatrix((rot @ np.diag(rng.uniform(0.95, 1.05, 3))).ravel().tolist())
    bsp = sitk.BSplineTransformInitializer(ref, [4, 4, 4], 3)
    coef = np.clip(rng.normal(0.0, max_mm / 2, len(bsp.GetParameters())), -max_mm, max_mm)
    bsp.SetParameters(coef.tolist())
    return sitk.CompositeTransform([aff, bsp])


def _coarse_edt(mask) -> np.ndarray:
    """Distance (mm) to the nearest False voxel of a 1 mm mask, computed on a 2 mm grid."""
    d = ndi.distance_transform_edt(mask[::2, ::2, ::2], sampling=2.0).astype(np.float32)
    for axis, n in enumerate(mask.shape):
        d = np.repeat(d, 2, axis=axis).take(np.arange(n), axis=axis)
    return d


def _ventricles(brain, gm, wm, depth) -> np.ndarray:
    """Lateral ventricles: deep CSF (1 - GM - WM > 0.5, > 20 mm inside the brain)."""
    csf = np.clip(1.0 - gm - wm, 0, 1) * brain
    deep = depth > 20
    lab, n = ndi.label((csf > 0.5) & deep)
    sizes = np.bincount(lab.ravel())[1:]
    keep = 1 + np.argsort(sizes)[-2:]
    return np.isin(lab, keep)


def _to_resolution(array, ref: sitk.Image, res: float) -> np.ndarray:
    """Resample a 1 mm array onto a ``res`` mm grid with the same origin and direction."""
    if res == 1.0:
        return array
    if res > 1.0:
        array = ndi.gaussian_filter(array, 0.425 * res)  # FWHM ≈ res mm
    img = sitk.GetImageFromArray(array.astype(np.float32))
    img.CopyInformation(ref)
    size = [int(np.floor((n - 1) / res)) + 1 for n in ref.GetSize()]
    out = sitk.Resample(img, size, sitk.Transform(), sitk.sitkLinear, ref.GetOrigin(),
                        (res,) * 3, ref.GetDirection(), 0.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


def make_brain_case(rng, target_ml: float, resolution: float = 2.0, template=None):
    """One synthetic MS-like T1 subject: ``(image, label)``.

    The T1 and label of :func:`make_brain_subject` without FLAIR or tissue map.

    Parameters
    ----------
    rng : numpy.random.Generator
    target_ml : float
        Lesion load to reach at 1 mm (ml); the stored load differs slightly after
        resampling.
    resolution : float
        Isotropic output voxel size in mm (1 gives the template's 197×233×189 grid).
    template : dict of SimpleITK.Image, optional
        ``{"t1", "gm", "wm"}`` as float32, read from :func:`template_dir` if omitted.

    Returns
    -------
    image : SimpleITK.Image
        int16, 0 outside the brain, white matter about 900.
    label : SimpleITK.Image
        uint8, 1 = lesion.
    """
    out = make_brain_subject(rng, target_ml, resolution, template)
    return out["t1"], out["label"]


def make_brain_subject(rng, target_ml: float, resolution: float = 2.0, template=None,
                       flair_rng=None, tissue: bool = False) -> dict:
    """One synthetic MS-like subject: T1, optionally FLAIR, label, optionally tissue classes.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws everything the T1 and the label need; the same stream gives the same T1 and
        label whether or not FLAIR is made.
    target_ml, resolution, template
        As in :func:`make_brain_case`.
    flair_rng : numpy.random.Generator, optional
        Makes a FLAIR-like second channel from its own stream: white matter darker than
        grey matter, CSF suppressed, the same lesions hyperintense.
    tissue : bool
        Also return the template's tissue classes warped like the subject (for
        measuring where lesions lie; the engine never sees it).

    Returns
    -------
    dict
        ``t1`` (int16 image), ``label`` (uint8, 1 = lesion), ``flair`` (int16 image or
        None), ``tissue`` (uint8 image, 0 outside the brain, 1 CSF, 2 GM, 3 WM, or None).
    """
    if template is None:
        template = load_template()
    ref = template["t1"]
    # evaluate the warp on a 4 mm grid once, then resample all maps in one pass
    coarse = [int(np.ceil((n - 1) / 4)) + 2 for n in ref.GetSize()]
    field = sitk.TransformToDisplacementField(
        _random_warp(ref, rng), sitk.sitkVectorFloat64, coarse, ref.GetOrigin(), (4.0,) * 3,
        ref.GetDirection())
    stack = sitk.Compose([template[k] for k in ("t1", "gm", "wm")])
    stack = sitk.Resample(stack, ref, sitk.DisplacementFieldTransform(field), sitk.sitkLinear, 0.0)
    maps = np.moveaxis(sitk.GetArrayFromImage(stack).astype(np.float32), -1, 0)
    warp = dict(zip(("t1", "gm", "wm"), maps, strict=True))
    t1, gm, wm = warp["t1"], warp["gm"] / 255.0, warp["wm"] / 255.0
    brain = t1 > 20
    t1 = np.where(brain, t1, 0.0).astype(np.float32)
    csf = np.clip(1.0 - gm - wm, 0, 1) * brain
    flair = None
    if flair_rng is not None:  # FLAIR-like: CSF suppressed, grey matter above white matter
        flair = np.where(brain, 0.10 * csf + 0.78 * gm + 0.58 * wm, 0.0).astype(np.float32)
        flair *= 1.0 + 0.03 * _smooth_noise(flair_rng, flair.shape, 1.5)
        flair_wm = float(np.median(flair[wm > 0.9]))
    depth = _coarse_edt(brain)
    vent = _ventricles(brain, gm, wm, depth)
    d_vent = _coarse_edt(~vent)
    # lesion centres: 80 % weighted by ventricle proximity, 20 % anywhere in deep WM
    cand = np.flatnonzero(((wm > 0.9) & (depth > 6)).ravel())
    near = np.exp(-d_vent.ravel()[cand] / 5.0)
    weights = 0.8 * near / near.sum() + 0.2 / len(cand)
    csf_level = float(np.median(t1[vent]))
    gm_level = float(np.median(t1[gm > 0.9]))
    lesion = np.zeros(t1.shape, bool)
    rmax = 3.5 + 3.0 * np.sqrt(min(target_ml, 20.0) / 20.0)
    for _ in range(400):
        if lesion.sum() >= target_ml * 1000.0:
            break
        center = np.unravel_index(_weighted_choice(rng, cand, weights), t1.shape)
        blob, half = irregular_blob(rng, np.exp(rng.uniform(np.log(2.5), np.log(rmax))), (1, 1, 1))
        vs, ps = _patch(center, half, t1.shape)
        blob = blob[ps] & (wm[vs] > 0.5)
        if blob.sum() < 8:
            continue
        level = csf_level + rng.uniform(0.2, 0.75) * (gm_level - csf_level)
        alpha = np.maximum(blob, ndi.gaussian_filter(blob.astype(np.float32), 0.8))
        value = level + 0.03 * level * rng.standard_normal(blob.shape)
        t1[vs] = np.minimum(t1[vs], t1[vs] * (1 - alpha) + value * alpha)
        lesion[vs] |= blob
        if flair is not None:  # the same lesion, hyperintense on FLAIR
            bright = flair_wm * flair_rng.uniform(1.45, 1.9)
            bright = bright * (1 + 0.04 * flair_rng.standard_normal(blob.shape))
            flair[vs] = np.maximum(flair[vs], flair[vs] * (1 - alpha) + bright * alpha)
    # per-subject contrast and a smooth multiplicative bias field (2nd-order polynomial)
    t1 = (t1 / 255.0) ** rng.uniform(0.9, 1.1) * 255.0 * _T1_SCALE * rng.uniform(0.92, 1.08)
    t1 *= _bias_field(rng, t1.shape)
    # resample, then noise at the output resolution; background stays exactly 0
    t1 = _to_resolution(t1, ref, resolution)
    inside = _to_resolution(brain.astype(np.float32), ref, resolution) > 0.5
    label = (_to_resolution(lesion.astype(np.float32), ref, resolution) > 0.5) & inside
    t1 = _rician(rng, t1, inside, rng.uniform(25, 40))
    spacing, origin, direction = (resolution,) * 3, ref.GetOrigin(), ref.GetDirection()
    out = {"t1": _image(t1, spacing, origin, direction),
           "label": _image(label.astype(np.uint8), spacing, origin, direction),
           "flair": None, "tissue": None}
    if flair is not None:
        flair = flair * 1000.0 * flair_rng.uniform(0.92, 1.08) * _bias_field(flair_rng, flair.shape)
        flair = _rician(flair_rng, _to_resolution(flair, ref, resolution), inside,
                        flair_rng.uniform(20, 30))
        out["flair"] = _image(flair, spacing, origin, direction)
    if tissue:
        probs = [_to_resolution(m.astype(np.float32), ref, resolution) for m in (csf, gm, wm)]
        classes = np.where(inside, 1 + np.argmax(np.stack(probs), axis=0), 0).astype(np.uint8)
        out["tissue"] = _image(classes, spacing, origin, direction)
    return out


def _bias_field(rng, shape) -> np.ndarray:
    """Smooth multiplicative bias field: exp of a 2nd-order polynomial, mean log 0."""
    c = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    z, y, x = c[0][:, None, None], c[1][None, :, None], c[2][None, None, :]
    terms = [z, y, x, z * z, y * y, x * x, z * y, z * x, y * x]
    log_bias = sum(rng.normal(0, 0.06) * t for t in terms)
    return np.exp(log_bias - np.mean(log_bias))


def _rician(rng, image, inside, snr) -> np.ndarray:
    """Rician noise of sigma = 90th percentile / ``snr`` inside; int16, exactly 0 outside."""
    sigma = np.percentile(image[inside], 90) / snr
    n1, n2 = (rng.standard_normal(image.shape, dtype=np.float32) * sigma for _ in range(2))
    noisy = np.sqrt((image + n1) ** 2 + n2 ** 2)
    return np.where(inside, np.clip(np.rint(noisy), 1, 32767), 0).astype(np.int16)


def load_template() -> dict:
    """Read nilearn's MNI ICBM152 2009 T1, GM and WM maps as float32 SimpleITK images.

    Returns
    -------
    dict
        ``{"t1": image, "gm": image, "wm": image}``, values 0..255.
    """
    folder = template_dir()
    return {k: sitk.ReadImage(str(folder / f), sitk.sitkFloat32) for k, f in TEMPLATE_FILES.items()}


# ------------------------------------------------------------------------------- liver
def _ellipsoid(x, y, z, c, axes):
    return np.sqrt(((x - c[0]) / axes[0]) ** 2 + ((y - c[1]) / axes[1]) ** 2
                   + ((z - c[2]) / axes[2]) ** 2)


def _tubes(rng, vessel, start_zyx, directions, radius, length, origin_zyx, sp):
    """Stamp random-walk tubes (radius tapering to 50 %) into ``vessel`` (bool, in place)."""
    for d in directions:
        p, d = np.array(start_zyx, float), np.asarray(d, float) / np.linalg.norm(d)
        r0, ell = rng.uniform(*radius), rng.uniform(*length)
        for t in np.arange(0.0, ell, 1.5):
            d = d + 0.2 * rng.standard_normal(3)
            d /= np.linalg.norm(d)
            p = p + 1.5 * d
            r = r0 * (1 - 0.5 * t / ell)
            idx = np.rint((p - origin_zyx) / sp).astype(int)
            half = np.ceil(r / sp).astype(int) + 1
            vs, ps = _patch(idx, half, vessel.shape)
            if any(s.stop <= s.start for s in vs):
                continue
            g = np.meshgrid(*[(np.arange(s.start, s.stop) * h + o - q) for s, h, o, q
                              in zip(vs, sp, origin_zyx, p, strict=True)], indexing="ij")
            vessel[vs] |= (g[0] ** 2 + g[1] ** 2 + g[2] ** 2) <= r * r


def make_liver_case(rng, shape=(48, 128, 128), spacing_xyz=(1.5, 1.5, 3.0)):
    """One synthetic contrast-enhanced abdominal CT with liver and tumours.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple of int
        Array shape (z, y, x).
    spacing_xyz : tuple of float
        Voxel size in SimpleITK order (mm).

    Returns
    -------
    image : SimpleITK.Image
        int16 Hounsfield units; -1024 outside the reconstruction circle.
    label : SimpleITK.Image
        uint8: 0 background, 1 liver (with its vessels), 2 tumour.
    """
    nz, ny, nx = shape
    sp = np.array(spacing_xyz[::-1], float)  # zyx
    origin_zyx = -(np.array(shape) - 1) * sp / 2
    z = (origin_zyx[0] + np.arange(nz) * sp[0])[:, None, None]
    y = (origin_zyx[1] + np.arange(ny) * sp[1])[None, :, None]
    x = (origin_zyx[2] + np.arange(nx) * sp[2])[None, None, :]
    noise = lambda mm: _smooth_noise(rng, shape, mm / sp)  # noqa: E731
    # body outline, subcutaneous fat, muscle wall, abdominal cavity
    ax, ay, yc = rng.uniform(80, 89), rng.uniform(60, 68), rng.uniform(-3, 3)
    taper = 1 + 0.03 * z / 70
    rho = np.sqrt((x / (ax * taper)) ** 2 + ((y - yc) / (ay * taper)) ** 2) + 0.012 * noise(25)
    fat_mm, wall_mm = rng.uniform(6, 14), rng.uniform(6, 10)
    body, cavity = rho < 1, rho < 1 - (fat_mm + wall_mm) / ay
    hu = np.full(shape, -1000.0, np.float32)
    hu[body] = -100 + 10 * noise(10)[body]
    hu[rho < 1 - fat_mm / ay] = 48
    hu[body & (rho > 1 - 2 / ay)] = 30  # skin
    hu[cavity] = 30 + 8 * noise(5)[cavity]
    hu[cavity & (noise(7) > 0.45)] = -95  # fat between bowel loops
    # spine, aorta, IVC, kidneys (sizes scaled to this small body)
    ys = yc + ay - fat_mm - 36
    disc = (np.abs((z + rng.uniform(0, 26)) % 26 - 13) < 2.5)
    vb = np.hypot(x / 13, (y - ys) / 11)
    canal = np.hypot(x, y - ys - 17)
    lamina = (canal > 6) & (canal < 9.5) & (y > ys + 12)
    spinous = np.hypot(x / 3, (y - ys - 30) / 7) < 1
    transverse = np.hypot((np.abs(x) - 16) / 8, (y - ys - 17) / 3) < 1
    arch = lamina | spinous | transverse
    bone = np.broadcast_to((vb < 1) | arch, shape)
    hu = np.where(vb < 1, np.where(vb > 0.8, 650, np.where(disc, 90, 260)), hu)
    hu = np.where(arch, 520, hu)
    hu = np.where(canal <= 6, 20, hu)
    aorta = np.broadcast_to(np.hypot(x - 12, y - ys + 19) < rng.uniform(7, 9), shape)
    ivc = np.broadcast_to(np.hypot((x + 16) / 9, (y - ys + 17) / 6.5) < 1, shape)
    kz = origin_zyx[0] + rng.uniform(0, 25)
    kid = [_ellipsoid(x, y, z, (s * 42, ys + 4, kz + (0 if s > 0 else -10)), (15, 20, 40)) < 1
           for s in (-1, 1)]
    kidneys = (kid[0] | kid[1]) & cavity
    hu[kidneys] = 150 + 15 * noise(4)[kidneys]
    hu[aorta] = rng.uniform(160, 200)
    hu[ivc] = rng.uniform(120, 150)
    # liver: right lobe + left lobe, noisy outline, kept off the other organs
    cz = rng.uniform(-5, 15)
    right = _ellipsoid(x, y, z, (-ax * 0.42, yc - ay * 0.1, cz), (ax * 0.5, ay * 0.72, 62))
    left = _ellipsoid(x, y, z, (ax * 0.08, yc - ay * 0.42, cz + 18), (ax * 0.42, ay * 0.3, 40))
    others = ndi.binary_dilation(bone | aorta | ivc | kidneys, iterations=2)
    liver = (np.minimum(right, left) + 0.12 * noise(20) < 1) & cavity & ~others
    ring = ndi.binary_dilation(liver, iterations=1) & ~liver & cavity & ~others
    hu[ring] = -70  # thin perihepatic fat plane
    hu[liver] = rng.uniform(60, 70) + 4 * noise(6)[liver]
    # vessels: portal branches from the hilum, hepatic veins towards the IVC
    vessel = np.zeros(shape, bool)
    lz, ly, lx = (c.mean() * s + o
                  for c, s, o in zip(np.nonzero(liver), sp, origin_zyx, strict=True))
    hilum = np.array([lz - 12, ly + 10, lx + 18])
    dirs = [np.array([lz, ly, lx]) - hilum + rng.normal(0, 25, 3)
            for _ in range(rng.integers(8, 13))]
    _tubes(rng, vessel, hilum, dirs, (2.5, 5.0), (50, 100), origin_zyx, sp)
    top = np.array([lz + 35, ys - 17, -16.0])
    dirs = [np.array([-0.4, -1.0, s]) for s in rng.uniform(-1.2, 0.6, 3)]
    _tubes(rng, vessel, top, dirs, (3.0, 5.0), (45, 80), origin_zyx, sp)
    vessel &= liver
    hu[vessel] = rng.uniform(150, 180) + 8 * noise(3)[vessel]
    # tumours: irregular, hypodense, sometimes with a necrotic core or an enhancing rim
    labels = liver.astype(np.uint8)
    depth = ndi.distance_transform_edt(liver, sampling=sp)
    n_tumours = int(rng.integers(1, 9))
    for _ in range(n_tumours):
        r = float(np.exp(rng.uniform(np.log(4), np.log(22 if n_tumours < 4 else 12))))
        cand = np.flatnonzero((depth > min(0.6 * r, 0.8 * depth.max())).ravel())
        center = np.unravel_index(cand[rng.integers(len(cand))], shape)
        blob, half = irregular_blob(rng, r, sp, roughness=0.25)
        vs, ps = _patch(center, half, shape)
        blob = blob[ps] & liver[vs]
        inner = ndi.distance_transform_edt(blob, sampling=sp)
        value = np.full(blob.shape, rng.uniform(20, 35), np.float32)
        if r > 10 and rng.random() < 0.6:
            value[inner > 0.5 * inner.max()] -= rng.uniform(8, 15)
        if rng.random() < 0.4:
            value[(inner > 0) & (inner <= 2.0)] += rng.uniform(15, 30)
        hu[vs] = np.where(blob, value + 5 * rng.standard_normal(blob.shape), hu[vs])
        labels[vs][blob] = 2
    # scanner look: slight blur, correlated noise, reconstruction circle
    hu = ndi.gaussian_filter(hu, (0.5, 0.7, 0.7))
    sigma = rng.uniform(10, 15)
    hu += sigma * _smooth_noise(rng, shape, (0.3, 0.6, 0.6))
    hu = np.where(np.hypot(x, y) > min(nx * sp[2], ny * sp[1]) / 2, -1024, hu)
    hu = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    origin_xyz = origin_zyx[::-1]
    eye = (1, 0, 0, 0, 1, 0, 0, 0, 1)
    return _image(hu, spacing_xyz, origin_xyz, eye), _image(labels, spacing_xyz, origin_xyz, eye)


# ------------------------------------------------------------------------- datasets
#: each sample's lesionmix_recipe.json: the fields that differ from the defaults
SAMPLE_RECIPES = {
    "brain": {"lesion_classes": [1], "likelihood": {"sigma_mm": 4.0}},
    "liver": {"lesion_classes": [2], "organ_label": 1, "likelihood": {"floor": 0.0}},
}


def sample_recipe(kind: str):
    """The recipe that fits a sample dataset (what its ``lesionmix_recipe.json`` holds):
    the brain's lesion class 1 with a 4 mm smoothed map; the liver's tumour class 2 with
    the liver as the organ label (organ-style map, tumours placed inside the liver)."""
    return Recipe.from_dict(SAMPLE_RECIPES[kind])


def _dataset_json(kind: str, n: int, seed: int, resolution: float | None,
                  channels=("t1",)) -> dict:
    common = {"numTraining": n, "file_ending": ".nii.gz", "seed": seed,
              "generator": "python -m napari_lesionmix.sample_data"}
    if kind == "brain":
        names = {str(i): CHANNEL_NAMES[c] for i, c in enumerate(channels)}
        return {"name": "LesionMixSampleBrainMR",
                "description": f"Synthetic MS-like {' + '.join(names.values())} brain MR built "
                               "from the MNI ICBM152 2009 template (see NOTICE); "
                               f"{resolution:g} mm isotropic.",
                "channel_names": names, "labels": {"background": 0, "lesion": 1},
                **common}
    return {"name": "LesionMixSampleLiverCT",
            "description": "Synthetic contrast-enhanced abdominal CT (Hounsfield units) "
                           "with liver and hypodense tumours.",
            "channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1, "tumour": 2},
            **common}


def generate(kind: str, out_dir: str | Path, n: int | None = None, seed: int = DEFAULT_SEED,
             resolution: float = 2.0, overwrite: bool = False, progress=print,
             channels=("t1",), tissue: bool = False, dtype: str = "int16") -> list[dict]:
    """Write one dataset in nnU-Net v2 raw layout, with its ``lesionmix_recipe.json``.

    Parameters
    ----------
    kind : {"brain", "liver"}
    out_dir : path-like
        Dataset folder (gets ``dataset.json``, ``imagesTr/``, ``labelsTr/``).
    n : int, optional
        Number of cases (default 6 brain, 4 liver).
    seed : int
    resolution : float
        Brain voxel size in mm (ignored for the liver CT).
    overwrite : bool
        Replace existing files; otherwise fail before writing anything.
    progress : callable or None
        Called with a one-line message per case.
    channels : sequence of {"t1", "flair"}
        Brain channels, in file order (``_0000``, ``_0001``); the T1 and the label are the
        same whether or not FLAIR is made (it draws from its own stream).
    tissue : bool
        Brain only: also write ``tissueTr/<case>.nii.gz``, the template's tissue classes
        warped like the subject (1 CSF, 2 GM, 3 WM), for measuring where lesions lie.
    dtype : {"int16", "float32"}
        Brain only: the voxel type of the image files (every channel).

    Returns
    -------
    list of dict
        Per case: ``case``, ``shape`` (SimpleITK x, y, z), ``lesions`` (26-connected
        components of at least 3 voxels), ``lesion_voxels``, ``load_ml``.
    """
    if kind not in ("brain", "liver"):
        raise ValueError(f"unknown sample kind {kind!r}; expected 'brain' or 'liver'")
    if resolution <= 0:
        raise ValueError(f"resolution must be > 0 mm, got {resolution}")
    n = n if n is not None else (6 if kind == "brain" else 4)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    channels = tuple(channels) if kind == "brain" else ("ct",)
    if kind == "brain" and (set(channels) - {"t1", "flair"} or channels.count("t1") != 1
                            or len(set(channels)) != len(channels)):
        raise ValueError(f"channels: expected t1 and optionally flair, each once, got "
                         f"{','.join(channels)}")
    if dtype not in ("int16", "float32") or (dtype != "int16" and kind != "brain"):
        raise ValueError(f"dtype must be int16 (or float32 for the brain), got {dtype}")
    out = Path(out_dir)
    names = [f"{kind}{i + 1:02d}" for i in range(n)]
    targets = [out / "dataset.json", out / DATASET_RECIPE_FILE] + [
        p for c in names for p in ([out / "imagesTr" / channel_file(c, k, ".nii.gz")
                                    for k in range(len(channels))]
                                   + [out / "labelsTr" / f"{c}.nii.gz"])]
    if tissue and kind == "brain":
        targets += [out / "tissueTr" / f"{c}.nii.gz" for c in names]
    clash = [str(p) for p in targets if p.exists()]
    if clash and not overwrite:
        raise FileExistsError(f"{out}: {len(clash)} file(s) already exist (e.g. {clash[0]}); "
                              "pass --overwrite to replace them")
    template = load_template() if kind == "brain" else None
    lesion_label = 1 if kind == "brain" else 2
    summary = []
    for i, name in enumerate(names):
        if kind == "brain":
            rng = case_rng(seed, _BRAIN_CODE, i)
            base = BRAIN_LOADS_ML[i] if i < len(BRAIN_LOADS_ML) else \
                float(np.exp(rng.uniform(np.log(0.5), np.log(20))))
            flair_rng = case_rng(seed, _FLAIR_CODE, i) if "flair" in channels else None
            made = make_brain_subject(rng, base * rng.uniform(0.9, 1.1), resolution, template,
                                      flair_rng, tissue)
            images, label = [made[c] for c in channels], made["label"]
            if dtype == "float32":
                images = [sitk.Cast(img, sitk.sitkFloat32) for img in images]
            if tissue:
                write_nifti(made["tissue"], out / "tissueTr" / f"{name}.nii.gz", overwrite)
        else:
            images, label = make_liver_case(case_rng(seed, _LIVER_CODE, i))
            images = [images]
        image = images[0]
        for k, img in enumerate(images):
            write_nifti(img, out / "imagesTr" / channel_file(name, k, ".nii.gz"), overwrite)
        write_nifti(label, out / "labelsTr" / f"{name}.nii.gz", overwrite)
        mask = sitk.GetArrayViewFromImage(label) == lesion_label
        info = {"case": name, "shape": list(image.GetSize()),
                "lesions": count_lesions(mask), "lesion_voxels": int(mask.sum()),
                "load_ml": round(float(mask.sum() * np.prod(image.GetSpacing()) / 1000), 3)}
        summary.append(info)
        if progress:
            progress(f"{out.name}/{name}: {info['lesions']} lesions, {info['load_ml']} ml")
    sample_recipe(kind).to_json(out / DATASET_RECIPE_FILE)
    atomic_write_text(out / "dataset.json",
                      json.dumps(_dataset_json(kind, n, seed, resolution, channels), indent=2)
                      + "\n", overwrite=overwrite)
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m napari_lesionmix.sample_data {brain,liver,all} ...``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    p = argparse.ArgumentParser(
        prog="python -m napari_lesionmix.sample_data",
        description="Generate the synthetic sample datasets (nnU-Net v2 raw layout).")
    p.add_argument("which", nargs="?", default="all", choices=("brain", "liver", "all"),
                   help="which dataset to make (default: all)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"parent folder; datasets go to OUT/{BRAIN_DIR} and OUT/{LIVER_DIR} "
                        "(default: the bundled folders inside the package)")
    p.add_argument("--resolution", type=float, default=2.0,
                   help="brain voxel size in mm (default 2; 1 gives the 197x233x189 grid)")
    p.add_argument("--n", type=int, default=None, help="number of cases (default 6 brain, 4 liver)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--channels", default="t1",
                   help="brain channels, comma-separated: t1 (default) or t1,flair "
                        "(a FLAIR-like second channel; T1 and labels stay the same)")
    p.add_argument("--tissue", action="store_true",
                   help="brain: also write tissueTr/ (template tissue classes 1 CSF, 2 GM, "
                        "3 WM, warped like each subject; for measurements only)")
    p.add_argument("--dtype", default="int16", choices=("int16", "float32"),
                   help="brain: voxel type of the images (default int16)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    a = p.parse_args(argv)
    parent = a.out if a.out is not None else HERE
    kinds = ("brain", "liver") if a.which == "all" else (a.which,)
    try:
        for kind in kinds:
            folder = parent / (BRAIN_DIR if kind == "brain" else LIVER_DIR)
            generate(kind, folder, a.n, a.seed, a.resolution, a.overwrite,
                     channels=[c.strip().lower() for c in a.channels.split(",")],
                     tissue=a.tissue, dtype=a.dtype if kind == "brain" else "int16")
            print(f"wrote {folder}")
    except (FileExistsError, FileNotFoundError, ModuleNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
