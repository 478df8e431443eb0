"""How real synthetic lesions look: the measures of ``bench_realism.py`` (and the crops of
``scripts/realism_gallery.py``).

Every intensity is a z-score over the case's allowed region (the brain, or the liver), per
channel, as the engine normalises. "Texture" is the standard deviation of the image minus
its Gaussian blur (sigma = 1 voxel) over a lesion's voxels; "contrast" is the mean inside a
lesion minus the mean of the 2-voxel ring around it (allowed, non-lesion voxels). A tissue
map (brain: 1 CSF, 2 GM, 3 WM from the template the sample was warped from; liver: the
organ) is used only here, to measure; the engine never sees it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

FULL = np.ones((3, 3, 3), bool)
TISSUES = {1: "CSF", 2: "GM", 3: "WM"}


def zscores(case, allowed: np.ndarray) -> np.ndarray:
    """The case's channels as z-scores over ``allowed`` (float32, (C, *shape))."""
    stats = case.intensity_stats(allowed)
    shape = (-1,) + (1,) * case.ndim
    return ((case.channels - stats[:, 0].reshape(shape)) / stats[:, 1].reshape(shape)).astype(
        np.float32)


def highpass(z: np.ndarray) -> np.ndarray:
    """Image minus its Gaussian blur (sigma 1 voxel), per channel."""
    return np.stack([c - ndi.gaussian_filter(c, 1.0) for c in z])


def robust_std(values: np.ndarray) -> float:
    """1.4826 × the median absolute deviation: a std that anatomical edges do not inflate."""
    values = np.asarray(values, float)
    if values.size == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _box(slices, shape, pad):
    return tuple(slice(max(s.start - pad, 0), min(s.stop + pad, n)) for s, n in zip(slices, shape))


def components(mask: np.ndarray, pad: int = 4):
    """Connected components (full connectivity): ``[(box, local_mask), ...]``."""
    lab, _ = ndi.label(mask, FULL)
    out = []
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        box = _box(sl, mask.shape, pad)
        out.append((box, lab[box] == i))
    return out


def lesion_measures(z, hp, lesion_all, allowed, tissue, box, local) -> dict:
    """Measures of one lesion (``local`` is its mask inside ``box``)."""
    ring = ndi.binary_dilation(local, FULL, iterations=2) & ~local
    ring &= allowed[box] & ~lesion_all[box]
    zc = z[(slice(None),) + box]
    hc = hp[(slice(None),) + box]
    inside = [c[local] for c in zc]
    contrast = [float(v.mean() - c[ring].mean()) if ring.any() else float("nan")
                for v, c in zip(inside, zc)]
    texture = [float(c[local].std()) for c in hc]
    under = tissue[box][local] if tissue is not None else np.zeros(0, int)
    shape = lesion_all.shape
    border = any(s.start == 0 and local.take(0, axis=k).any()
                 or s.stop == n and local.take(-1, axis=k).any()
                 for k, (s, n) in enumerate(zip(box, shape)))
    return {"voxels": int(local.sum()), "contrast": contrast, "texture": texture,
            "tissue": np.bincount(under, minlength=4).tolist(),
            "outside": int((local & ~allowed[box]).sum()), "border": bool(border),
            "pairs_identical": identical_pairs(local), "smooth_flips": smooth_flips(local)}


def site_measures(hp, region_box, region, same_tissue_box) -> dict:
    """Texture inside an inpainted region (plain and robust std) and of the same tissue
    2-6 voxels around it (robust: anatomical edges do not count as grain)."""
    shell = ndi.binary_dilation(region, FULL, iterations=6) & ~ndi.binary_dilation(
        region, FULL, iterations=1)
    shell &= same_tissue_box
    hc = hp[(slice(None),) + region_box]
    inside = [float(c[region].std()) for c in hc]
    inside_robust = [robust_std(c[region]) for c in hc]
    around = [robust_std(c[shell]) for c in hc]
    return {"voxels": int(region.sum()), "inside": inside, "inside_robust": inside_robust,
            "around": around, "shell_voxels": int(shell.sum())}


def identical_pairs(mask: np.ndarray, axis: int = 0) -> float:
    """Share of consecutive slices along ``axis`` (both non-empty) whose cross-sections are
    identical: about 2/3 for a mask upsampled 3× along that axis with steps, low for a shape
    sampled on the grid it lives on. NaN for lesions of fewer than 3 slices."""
    m = np.moveaxis(mask, axis, 0)
    full = [k for k in range(m.shape[0] - 1) if m[k].any() and m[k + 1].any()]
    if len(full) < 2:
        return float("nan")
    return float(np.mean([np.array_equal(m[k], m[k + 1]) for k in full]))


def smooth_flips(mask: np.ndarray) -> float:
    """Share of a lesion's voxels that change when it is smoothed (Gaussian, sigma 1 voxel,
    > 0.5): staircases and boxes flip many, smooth shapes few."""
    if not mask.any():
        return float("nan")
    sm = ndi.gaussian_filter(np.pad(mask, 3).astype(np.float32), 1.0)[(slice(3, -3),) * mask.ndim]
    return float(((sm > 0.5) != mask).sum() / mask.sum())


def summarise(measures: list[dict], channels: list[str]) -> dict:
    """Means over lesions: contrast and texture per channel, tissue shares, containment."""
    if not measures:
        return {"lesions": 0}
    out = {"lesions": len(measures), "voxels": int(sum(m["voxels"] for m in measures))}
    for k, name in enumerate(channels):
        c = np.array([m["contrast"][k] for m in measures], float)
        t = np.array([m["texture"][k] for m in measures], float)
        out[f"contrast_{name}"] = float(np.nanmean(c))
        out[f"contrast_{name}_under_1"] = int(np.sum(np.abs(c) < 1.0))
        out[f"texture_{name}"] = float(np.nanmean(t))
    tissue = np.sum([m["tissue"] for m in measures], axis=0)
    if tissue[1:].sum():
        for k, name in TISSUES.items():
            out[f"in_{name}"] = float(tissue[k] / tissue.sum())
    out["with_voxels_outside"] = int(sum(m["outside"] > 0 for m in measures))
    out["max_share_outside"] = float(max(m["outside"] / m["voxels"] for m in measures))
    out["touching_border"] = int(sum(m["border"] for m in measures))
    paired = [m for m in measures if "donor_contrast" in m]
    if paired:
        out["paired_with_donor"] = len(paired)
        for k, name in enumerate(channels):
            c = np.array([m["contrast"][k] / m["donor_contrast"][k] for m in paired])
            t = np.array([m["texture"][k] / m["donor_texture"][k] for m in paired])
            out[f"contrast_{name}_vs_donor_median"] = float(np.nanmedian(c))
            out[f"texture_{name}_vs_donor_median"] = float(np.nanmedian(t))
    out["pairs_identical"] = float(np.nanmean([m["pairs_identical"] for m in measures]))
    out["smooth_flips"] = float(np.nanmean([m["smooth_flips"] for m in measures]))
    return out
