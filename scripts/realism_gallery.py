"""A page of zoomed three-plane crops: real lesions beside synthetic ones (populated, and
sites before and after inpainting), on the T1 + FLAIR brain and on the liver CT.

Run: ``python scripts/realism_gallery.py [--save | --out FILE]`` (``--save`` replaces
``docs/images/realism_gallery.png``; by default the page goes to a temporary folder).

The cases are those of ``benchmarks/bench_realism.py`` (the brain with a FLAIR-like
channel is generated into a temporary folder), synthesised with the default recipe
and each dataset's lesion classes and organ label. Each row is one lesion: axial, coronal
and sagittal planes through its centre, about 5 cm across, per channel, in physical
proportions, with the label's outline on the last panel only (so the edges can be judged).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import bench_realism as br  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import realism_measures as rm  # noqa: E402

from napari_lesionmix.core.lesions import LesionBank, placement_region  # noqa: E402
from napari_lesionmix.core.likelihood import LikelihoodMap  # noqa: E402
from napari_lesionmix.core.mix import synthesize  # noqa: E402

HALF_MM = 25.0  # half the width of a crop
WINDOW = {"T1": (-3.0, 2.5), "FLAIR": (-2.5, 4.0), "CT": (-3.0, 2.5)}  # z-scores


def planes(vol, centre, spacing_zyx):
    """Axial, coronal and sagittal crops (2D arrays) and their aspect ratios."""
    half = [max(3, int(round(HALF_MM / s))) for s in spacing_zyx]
    c = [int(round(v)) for v in centre]

    def crop(axis):
        sl = []
        for k in range(3):
            if k == axis:
                sl.append(c[k])
            else:
                lo = c[k] - half[k]
                sl.append(slice(max(lo, 0), min(c[k] + half[k] + 1, vol.shape[k])))
        return vol[tuple(sl)]

    sz, sy, sx = spacing_zyx
    return [(crop(0), sy / sx), (crop(1)[::-1], sz / sx), (crop(2)[::-1], sz / sy)]


def draw_row(axes, z, mask, centre, spacing, channels, label, titles=False):
    """One lesion: three planes per channel, the outline on the last panel."""
    k = 0
    for ci, name in enumerate(channels):
        lo, hi = WINDOW[name]
        for p, ((img, aspect), (msk, _)) in enumerate(zip(planes(z[ci], centre, spacing),
                                                          planes(mask, centre, spacing))):
            ax = axes[k]
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, aspect=aspect, interpolation="nearest")
            if ci == len(channels) - 1 and p == 2:
                ax.contour(msk.astype(float), levels=[0.5], colors="gold", linewidths=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
            if p == 0 and ci == 0:
                ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
            if titles:
                ax.set_title(f"{name} {('axial', 'coronal', 'sagittal')[p]}", fontsize=7, pad=2)
            k += 1


def examples(co: br.Cohort, n_pop: int, n_sites: int, seed: int):
    """(label, z-scores, mask, centre) rows: real lesions, populated ones, inpainted sites
    before and after."""
    rng = np.random.default_rng(seed)
    bank = LesionBank.from_recipe(co.cases, co.recipe)
    lmap = LikelihoodMap.from_recipe(co.cases, co.recipe)
    rows = {"real": [], "populated": [], "inpainted": []}
    for i, case in enumerate(co.cases):
        allowed = placement_region(case, co.recipe.organ_label)
        z_src = rm.zscores(case, allowed)
        lesions = co.lesions(case.labels)
        for box, local in rm.components(lesions, pad=0):
            if local.sum() >= 15:
                centre = [s.start + c for s, c in zip(box, ndi.center_of_mass(local))]
                rows["real"].append((f"real\n{case.name}", z_src, lesions, centre))
        up = synthesize(case, bank, lmap, co.recipe, seed=seed + i,
                        target_load=2.0 * max(lesions.sum(), 50) * case.geometry.voxel_volume)
        z_up = rm.zscores(type(case)(up.case.channels, case.labels, case.geometry), allowed)
        after = co.lesions(up.case.labels)
        for box, local in rm.components(after & ~lesions, pad=0):
            if local.sum() >= 15:
                centre = [s.start + c for s, c in zip(box, ndi.center_of_mass(local))]
                rows["populated"].append((f"populated\nin {case.name}", z_up, after, centre))
        down = synthesize(case, bank, lmap, co.recipe, seed=seed + 100 + i, target_load=0.0)
        z_down = rm.zscores(type(case)(down.case.channels, case.labels, case.geometry), allowed)
        gone = lesions & ~co.lesions(down.case.labels)
        for box, local in rm.components(gone, pad=0):
            if local.sum() >= 15:
                centre = [s.start + c for s, c in zip(box, ndi.center_of_mass(local))]
                rows["inpainted"].append((centre, case.name, z_src, z_down, lesions))
    pick = lambda seq, n: [seq[j] for j in sorted(rng.choice(len(seq), min(n, len(seq)),  # noqa: E731
                                                               replace=False))]
    out = pick(rows["real"], 2) + pick(rows["populated"], n_pop)
    for centre, name, before, after, mask in pick(rows["inpainted"], n_sites):
        out.append((f"before\ninpainting\n{name}", before, mask, centre))
        out.append(("after", after, mask, centre))
    return out


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save", action="store_true",
                    help="replace the committed docs/images/realism_gallery.png")
    ap.add_argument("--out", type=Path, default=None,
                    help="the PNG to write (default: in a new temporary folder)")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)
    if args.out is None:
        folder = (ROOT / "docs" / "images" if args.save
                  else Path(tempfile.mkdtemp(prefix="lesionmix-gallery-")))
        args.out = folder / "realism_gallery.png"
    brain, liver = br.brain_cohort("default"), br.liver_cohort("default")
    sets = [(brain, examples(brain, 4, 2, args.seed)), (liver, examples(liver, 3, 2, args.seed))]
    n_rows = max(len(rows) for _, rows in sets)
    fig = plt.figure(figsize=(13.5, 1.35 * n_rows + 0.4), dpi=110)
    grid = fig.add_gridspec(n_rows, 10, width_ratios=[1] * 6 + [0.35] + [1] * 3,
                            wspace=0.04, hspace=0.06, top=0.955, bottom=0.01)
    for col0, (co, rows) in zip((0, 7), sets):
        width = 3 * len(co.channels)
        for r, (label, z, mask, centre) in enumerate(rows):
            axes = [fig.add_subplot(grid[r, col0 + k]) for k in range(width)]
            draw_row(axes, z, mask, centre, co.cases[0].geometry.spacing_zyx, co.channels, label,
                     titles=r == 0)
    fig.text(0.36, 0.995, "brain, 2 mm, T1 + FLAIR-like (outline: the label)",
             ha="center", va="top", fontsize=9)
    fig.text(0.83, 0.995, "liver CT, 1.5×1.5×3 mm", ha="center", va="top", fontsize=9)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, bbox_inches="tight")
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
