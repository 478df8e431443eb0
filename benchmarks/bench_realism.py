"""Realism benchmark: are synthetic lesions where, how large, how bright and how grainy real
ones are? Real vs populated, per channel, on a T1 + FLAIR brain and on the liver CT.

Run: ``python benchmarks/bench_realism.py [--cases 40] [--save | --out FILE]``

- brain: the sample generator's six 2 mm subjects with a FLAIR-like second channel and the
  template's tissue classes (generated into a temporary folder, read, and removed); liver:
  the bundled ``liver_ct`` sample.
- recipe: the default one, with each dataset's lesion classes and organ label (those of
  its ``lesionmix_recipe.json``); ``--recipe sample`` takes the whole file instead.
- for every load distribution, ``--cases`` cases are synthesised (sources in turn, seeds
  spawned from one SeedSequence); populated lesions, inpainted sites and loads are measured
  on every one of them against the sources' own real lesions.
- shape: lesions of a thick-slice copy of the brain cohort (2×2×6 mm) prepared for the
  2 mm cases (only the change of grid); oblique: one brain case under a rotated header (anatomy rotated 25° and 15° and
  moved 14 mm in physical space), its likelihood map mass outside its brain and where its lesions land.

Figures are printed and written to a temporary file, or with ``--save`` to
``benchmarks/results/realism.json``. Nothing here is pass/fail; the goals are printed beside.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import realism_measures as rm  # noqa: E402
from common import output_args, save, scratch  # noqa: E402

from napari_lesionmix.core.case import Case  # noqa: E402
from napari_lesionmix.core.edits import CaseContext, prepare_lesion  # noqa: E402
from napari_lesionmix.core.geometry import Geometry  # noqa: E402
from napari_lesionmix.core.io_utils import channel_file  # noqa: E402
from napari_lesionmix.core.lesions import LesionBank, lesion_mask, placement_region  # noqa: E402
from napari_lesionmix.core.likelihood import LikelihoodMap  # noqa: E402
from napari_lesionmix.core.mix import location_sampler, replay, synthesize  # noqa: E402
from napari_lesionmix.core.recipe import Recipe  # noqa: E402
from napari_lesionmix.core.transforms import LesionParams  # noqa: E402
from napari_lesionmix.sample_data import sample_dir, sample_paths  # noqa: E402

DISTS = ("real", "uniform", "gaussian", "low", "medium", "high")
GOALS = {"in_WM": ">= 0.80", "in_CSF": "<= 0.02", "contrast ratio": "0.85-1.15",
         "texture ratio": "0.75-1.25", "inpainted/around": "<= 1.5 (and >= 1/1.5)",
         "reached": ">= 0.90", "outside": "0", "map mass outside brain (oblique)": "<= 0.05"}


class Cohort:
    """Cases of one dataset with what measuring them needs."""

    def __init__(self, name, cases, tissues, recipe, channels):
        self.name, self.cases, self.tissues = name, cases, tissues
        self.recipe, self.channels = recipe, channels
        self.classes = recipe.lesion_classes

    def lesions(self, labels):
        return np.isin(labels, self.classes)

    def allowed(self, case):
        """Where the source lets lesions be: its allowed region and its own lesions."""
        return placement_region(case, self.recipe.organ_label) | self.lesions(case.labels)

    def same_tissue(self, i, box, region, labels):
        """Voxels of ``box`` of the tissue under ``region`` (brain: its majority class;
        liver: the organ)."""
        if self.recipe.organ_label is not None:
            return labels[box] == self.recipe.organ_label
        t = self.tissues[i][box]
        major = np.bincount(t[region], minlength=4)[1:].argmax() + 1
        return t == major


def brain_cohort(kind: str) -> Cohort:
    from napari_lesionmix.sample_data.make import generate
    with scratch("lesionmix-realism-") as work:
        folder = work / "brain_mr_flair"
        generate("brain", folder, n=6, resolution=2.0, overwrite=True, progress=None,
                 channels=("t1", "flair"), tissue=True)
        cases, tissues = [], []
        for lab in sorted((folder / "labelsTr").glob("*.nii.gz")):
            name = lab.name[: -len(".nii.gz")]
            cases.append(Case.read([folder / "imagesTr" / channel_file(name, k, ".nii.gz")
                                    for k in (0, 1)], lab, name=name))
            tissues.append(sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "tissueTr"
                                                                     / lab.name))))
    recipe = _recipe(kind, "brain_mr")
    return Cohort("brain", cases, tissues, recipe, ["T1", "FLAIR"])


def liver_cohort(kind: str) -> Cohort:
    cases = [Case.read(images, label) for images, label in sample_paths("liver_ct")]
    return Cohort("liver", cases, [None] * len(cases), _recipe(kind, "liver_ct"), ["CT"])


def _recipe(kind, sample) -> Recipe:
    own = Recipe.from_json(sample_dir(sample) / "lesionmix_recipe.json")
    if kind == "sample":
        return own
    return Recipe(lesion_classes=own.lesion_classes, organ_label=own.organ_label)


# ------------------------------------------------------------------------ measuring
def measure_donors(co: Cohort, bank) -> dict:
    """Each bank lesion measured where it is: key -> its measures."""
    out = {}
    for i, case in enumerate(co.cases):
        allowed = co.allowed(case)
        z = rm.zscores(case, placement_region(case, co.recipe.organ_label))
        hp = rm.highpass(z)
        lesion = co.lesions(case.labels)
        for e in bank.entries:
            if e.lesion.case_name == case.name:
                local, box = lesion_mask(case.labels, e.lesion, co.recipe.connectivity, pad=4)
                out[e.key] = rm.lesion_measures(z, hp, lesion, allowed, co.tissues[i], box, local)
    return out


def measure_real(co: Cohort) -> list[dict]:
    out = []
    for i, case in enumerate(co.cases):
        allowed = co.allowed(case)
        z = rm.zscores(case, placement_region(case, co.recipe.organ_label))
        hp = rm.highpass(z)
        lesion = co.lesions(case.labels)
        for box, local in rm.components(lesion):
            if local.sum() >= co.recipe.min_voxels:
                out.append(rm.lesion_measures(z, hp, lesion, allowed, co.tissues[i], box, local))
    return out


def measure_output(co: Cohort, i: int, out: Case, prov=None, donors=None
                   ) -> tuple[list, list, int]:
    """Populated lesions, inpainted sites and new fragments of one synthesised case.

    With the provenance and ``donors`` (bank key -> the real lesion's measures), each
    populated lesion also carries its donor's contrast and texture."""
    src = co.cases[i]
    before, after = co.lesions(src.labels), co.lesions(out.labels)
    allowed = co.allowed(src)
    stats_case = Case(out.channels, src.labels, src.geometry)
    z = rm.zscores(stats_case, placement_region(src, co.recipe.organ_label))
    hp = rm.highpass(z)
    added = after & ~before
    lab, _ = ndi.label(added, rm.FULL)
    donor_of = {}
    if prov is not None and donors:
        for op in prov.accepted:
            if op.kind == "populate":
                donor_of[int(lab[tuple(int(c) for c in op.center)])] = donors.get(op.entry)
    populated = []
    for box, local in rm.components(added):
        m = rm.lesion_measures(z, hp, after, allowed, co.tissues[i], box, local)
        d = donor_of.get(int(lab[box][local][0]))
        if d is not None:
            m["donor_contrast"], m["donor_texture"] = d["contrast"], d["texture"]
        populated.append(m)
    sites = []
    for box, local in rm.components(before & ~after, pad=8):
        region = ndi.binary_dilation(local, rm.FULL, iterations=co.recipe.inpaint.dilate)
        region &= ~after[box] & allowed[box]
        same = co.same_tissue(i, box, region, src.labels) & ~after[box]
        same &= allowed[box] & ~before[box]
        sites.append(rm.site_measures(hp, box, region, same))
    fragments = sum(1 for box, local in rm.components(after, pad=0)
                    if local.sum() < co.recipe.min_voxels and (added[box] & local).any())
    return populated, sites, fragments


def floor_share(co: Cohort, lmap) -> tuple[float, float]:
    """Share of each case's sampling mass (mean over cases) where no training lesion ever
    was, and where the smoothed lesion map is zero (what only the floor reaches)."""
    if lmap is None:
        return float("nan"), float("nan")
    lk = co.recipe.likelihood
    maps = [LikelihoodMap.from_cases(co.cases, co.classes, co.recipe.organ_label, sigma,
                                     align=lk.align) for sigma in (0.0, lk.sigma_mm)]
    shares = []
    for case in co.cases:
        ctx = CaseContext(case, co.recipe)
        sampler = location_sampler(case, lmap, ctx)
        flat, cdf = sampler.table.table()
        p = np.diff(np.concatenate([[0.0], cdf]))
        shares.append([float(p[~(m.for_case(case).prob > 0).ravel()[flat]].sum()
                             / sampler.mass) for m in maps])
    return tuple(float(v) for v in np.mean(shares, axis=0))


# ------------------------------------------------------------------------ experiments
def run_distributions(co: Cohort, bank, lmap, n_cases: int) -> dict:
    real = rm.summarise(measure_real(co), co.channels)
    res = {"real": real, "loads": {}, "times_s": []}
    populated, sites, fragments, emptied = [], [], 0, 0
    replayed = []
    donors = measure_donors(co, bank)
    for d, dist in enumerate(DISTS):
        recipe = co.recipe.replace(load_distribution=dist)
        seeds = np.random.SeedSequence([2024, d]).spawn(n_cases)
        statuses = []
        for k in range(n_cases):
            i = k % len(co.cases)
            t0 = time.perf_counter()
            out = synthesize(co.cases[i], bank, lmap, recipe, seed=seeds[k])
            res["times_s"].append(time.perf_counter() - t0)
            prov = out.provenance
            statuses.append(prov.status)
            if prov.target_load_mm3 > 0 and not co.lesions(out.case.labels).any():
                emptied += 1
            p, s, f = measure_output(co, i, out.case, prov, donors)
            populated += p
            sites += s
            fragments += f
            if k < 2:
                again = replay(prov.to_dict(), co.cases[i], bank)
                replayed.append(bool(np.array_equal(again.channels, out.case.channels)
                                     and np.array_equal(again.labels, out.case.labels)))
        res["loads"][dist] = {"reached": statuses.count("reached") / n_cases,
                              "statuses": {s: statuses.count(s) for s in sorted(set(statuses))}}
    res["populated"] = rm.summarise(populated, co.channels)
    res["populated"]["new_fragments"] = fragments
    res["cases_emptied_with_target_above_0"] = emptied
    res["inpainted"] = summarise_sites(sites, co.channels)
    res["replay_bit_exact"] = all(replayed)
    res["median_case_s"] = statistics.median(res.pop("times_s"))
    return res


def summarise_sites(sites, channels) -> dict:
    out = {"sites": len(sites)}
    if not sites:
        return out
    for k, name in enumerate(channels):
        inside = np.array([s["inside"][k] for s in sites])
        robust = np.array([s["inside_robust"][k] for s in sites])
        around = np.array([s["around"][k] for s in sites])
        ok = np.isfinite(around) & (around > 0)
        ratio = robust[ok] / around[ok]  # both robust: grain against grain
        out[f"texture_{name}"] = float(np.mean(inside))
        out[f"texture_{name}_robust"] = float(np.mean(robust))
        out[f"ratio_{name}_plain_median"] = float(np.median(inside[ok] / around[ok]))
        out[f"around_{name}"] = float(np.nanmean(around))
        out[f"ratio_{name}_median"] = float(np.median(ratio))
        out[f"ratio_{name}_within_1.5"] = float(np.mean((ratio <= 1.5) & (ratio >= 1 / 1.5)))
    return out


def thick_source(case: Case, factor: int = 3) -> Case:
    """The case resampled to ``factor`` × thicker slices along array axis 0."""
    img = sitk.GetImageFromArray(np.moveaxis(case.channels, 0, -1), isVector=True)
    case.geometry.apply_to(img)
    sp = list(img.GetSpacing())
    size = list(img.GetSize())
    sp[2] *= factor
    size[2] = size[2] // factor
    smooth = [ndi.gaussian_filter1d(c, 0.425 * factor, axis=0) for c in case.channels]
    img = sitk.GetImageFromArray(np.moveaxis(np.stack(smooth), 0, -1), isVector=True)
    case.geometry.apply_to(img)
    frac = sitk.GetImageFromArray(ndi.gaussian_filter1d(
        np.isin(case.labels, [1]).astype(np.float32), 0.425 * factor, axis=0))
    case.geometry.apply_to(frac)
    args = (size, sitk.Transform(), sitk.sitkLinear, img.GetOrigin(), sp, img.GetDirection())
    chans = sitk.GetArrayFromImage(sitk.Resample(img, *args))
    lab = sitk.GetArrayFromImage(sitk.Resample(frac, *args)) > 0.5
    geo = Geometry(tuple(sp), img.GetOrigin(), img.GetDirection())
    return Case.from_arrays(np.moveaxis(chans, -1, 0), lab.astype(np.uint8), geo, name=case.name + "_thick")


def run_shape(co: Cohort) -> dict:
    """Lesions of a thick-slice copy of the cohort (2×2×6 mm) prepared for the 2 mm cases
    (no transform but the change of grid): slabs or rounded shapes?"""
    thick = [thick_source(c) for c in co.cases]
    bank = LesionBank.from_recipe(thick, co.recipe)
    ctx = CaseContext(co.cases[0], co.recipe)
    populated = []
    for entry in bank.entries:
        prep = prepare_lesion(entry, LesionParams.identity(3), ctx)
        if prep.voxels >= 20:
            populated.append({"pairs": rm.identical_pairs(prep.mask),
                              "flips": rm.smooth_flips(prep.mask)})
    real = [m for m in measure_real(co) if m["voxels"] >= 20]
    return {"real_pairs_identical": float(np.nanmean([m["pairs_identical"] for m in real])),
            "populated_pairs_identical": float(np.nanmean([m["pairs"] for m in populated])),
            "real_smooth_flips": float(np.nanmean([m["smooth_flips"] for m in real])),
            "populated_smooth_flips": float(np.nanmean([m["flips"] for m in populated])),
            "lesions": len(populated)}


def oblique_case(case: Case, angles=(25.0, 15.0), shift_mm=(0.0, 12.0, 8.0)) -> Case:
    """The same arrays under a header rotated about the brain's centre: the anatomy turns
    in physical space (an oblique acquisition of a differently positioned head)."""
    g = case.geometry
    rot = sitk.Euler3DTransform()
    rot.SetRotation(np.radians(angles[0]), 0.0, np.radians(angles[1]))
    r = np.array(rot.GetMatrix()).reshape(3, 3)
    d = np.array(g.direction).reshape(3, 3)
    centre_idx = np.array(ndi.center_of_mass(case.foreground()))
    centre = g.index_to_physical(centre_idx)
    new_d = r @ d
    origin = np.asarray(g.origin)
    new_origin = centre + r @ (origin - centre) + np.asarray(shift_mm)
    geo = Geometry(g.spacing, tuple(new_origin), tuple(new_d.ravel()))
    return Case.from_arrays(case.channels, case.labels, geo, name=case.name + "_oblique")


def run_oblique(co: Cohort, bank, n: int) -> dict:
    obl = oblique_case(co.cases[-1])
    cohort = co.cases[:-1] + [obl]
    lmap = LikelihoodMap.from_recipe(cohort, co.recipe)
    ref_fg = co.cases[0].foreground()
    moved = _to_grid(obl.foreground(), obl.geometry, co.cases[0])
    dice = 2 * (ref_fg & moved).sum() / (ref_fg.sum() + moved.sum())
    on_case = lmap.for_case(obl).prob
    fg = obl.foreground()
    outside = float(on_case[~fg].sum() / on_case.sum())
    physical = lmap.resample_to(obl.geometry, obl.labels.shape).prob
    outside_physical = float(physical[~fg].sum() / physical.sum())
    sub = Cohort("oblique", [obl], [co.tissues[-1]], co.recipe, co.channels)
    populated = []
    seeds = np.random.SeedSequence(99).spawn(n)
    load = float(co.lesions(obl.labels).sum() * obl.geometry.voxel_volume)
    for k in range(n):
        out = synthesize(obl, bank, lmap, co.recipe, seed=seeds[k], target_load=2 * load)
        populated += measure_output(sub, 0, out.case)[0]
    summ = rm.summarise(populated, co.channels)
    return {"dice_with_reference_brain": float(dice), "map_mass_outside_brain": outside,
            "map_mass_outside_brain_physical": outside_physical, "notices": lmap.notices,
            "populated_in_WM": summ.get("in_WM"), "populated_in_CSF": summ.get("in_CSF"),
            "lesions": summ["lesions"]}


def _to_grid(mask, geometry, ref: Case):
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    geometry.apply_to(img)
    like = sitk.Image([int(s) for s in ref.labels.shape[::-1]], sitk.sitkUInt8)
    ref.geometry.apply_to(like)
    return sitk.GetArrayFromImage(sitk.Resample(img, like, sitk.Transform(),
                                                sitk.sitkNearestNeighbor)).astype(bool)


# ------------------------------------------------------------------------ report
def report(name: str, res: dict, channels) -> None:
    real, pop, inp = res["real"], res["populated"], res["inpainted"]
    print(f"\n== {name}: {real['lesions']} real lesions, {pop['lesions']} populated, "
          f"{inp['sites']} inpainted sites; median {res['median_case_s'] * 1000:.0f} ms per case")
    if "in_WM" in real:
        print(f"tissue under lesions       real WM {real['in_WM']:.1%} GM {real['in_GM']:.1%} "
              f"CSF {real['in_CSF']:.1%} | populated WM {pop['in_WM']:.1%} GM {pop['in_GM']:.1%} "
              f"CSF {pop['in_CSF']:.1%}   (goal WM >= 80%, CSF <= 2%)")
    print(f"sampling mass where no lesion was ever seen {res['mass_never_seen']:.1%}; "
          f"reached only through the floor {res['mass_floor_only']:.1%} "
          f"(floor {res['floor']:g})")
    print(f"containment                populated with voxels outside: "
          f"{pop['with_voxels_outside']} (max share {pop['max_share_outside']:.1%}); "
          f"touching the border {pop['touching_border']}; new fragments < min_voxels "
          f"{pop['new_fragments']}   (goal 0)")
    for c in channels:
        rc, pc = real[f"contrast_{c}"], pop[f"contrast_{c}"]
        rt, pt = real[f"texture_{c}"], pop[f"texture_{c}"]
        print(f"{c:6s} contrast to 2-voxel ring real {rc:+.2f} populated {pc:+.2f} "
              f"ratio {pc / rc:.2f} (goal 0.85-1.15); |contrast| < 1: "
              f"{pop[f'contrast_{c}_under_1']}/{pop['lesions']} (real "
              f"{real[f'contrast_{c}_under_1']}/{real['lesions']})")
        print(f"{c:6s} texture inside real {rt:.3f} populated {pt:.3f} ratio {pt / rt:.2f} "
              f"(goal 0.75-1.25)")
        if f"contrast_{c}_vs_donor_median" in pop:
            print(f"{c:6s} each populated lesion against its own donor (median): contrast "
                  f"x{pop[f'contrast_{c}_vs_donor_median']:.2f}, texture "
                  f"x{pop[f'texture_{c}_vs_donor_median']:.2f}")
        if inp["sites"]:
            print(f"{c:6s} inpainted site texture {inp[f'texture_{c}']:.3f} (robust "
                  f"{inp[f'texture_{c}_robust']:.3f}), same tissue around (robust) "
                  f"{inp[f'around_{c}']:.3f}; per site robust ratio median "
                  f"{inp[f'ratio_{c}_median']:.2f}, within x1.5: {inp[f'ratio_{c}_within_1.5']:.0%} "
                  f"(plain std ratio median {inp[f'ratio_{c}_plain_median']:.2f})")
    loads = ", ".join(f"{d} {v['reached']:.0%}" for d, v in res["loads"].items())
    print(f"targets reached            {loads}   (goal >= 90% each)")
    print(f"cases emptied with a target above 0: {res['cases_emptied_with_target_above_0']}; "
          f"replay bit-exact: {res['replay_bit_exact']}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=40, help="synthesised cases per distribution")
    ap.add_argument("--recipe", choices=("default", "sample"), default="default")
    ap.add_argument("--only", choices=("brain", "liver"), default=None)
    output_args(ap, "realism")
    args = ap.parse_args(argv)
    results = {"recipe": args.recipe, "cases_per_distribution": args.cases, "goals": GOALS}
    for make in (brain_cohort, liver_cohort):
        co = make(args.recipe)
        if args.only and co.name != args.only:
            continue
        bank = LesionBank.from_recipe(co.cases, co.recipe)
        lmap = LikelihoodMap.from_recipe(co.cases, co.recipe)
        res = run_distributions(co, bank, lmap, args.cases)
        res["floor"] = co.recipe.likelihood.floor
        res["mass_never_seen"], res["mass_floor_only"] = floor_share(co, lmap)
        report(co.name, res, co.channels)
        if co.name == "brain":
            res["shape"] = run_shape(co)
            s = res["shape"]
            print(f"shape, 2x2x6 mm lesions on the 2 mm grid: identical consecutive slices real "
                  f"{s['real_pairs_identical']:.2f} populated {s['populated_pairs_identical']:.2f}; "
                  f"voxels flipped by smoothing real {s['real_smooth_flips']:.2f} populated "
                  f"{s['populated_smooth_flips']:.2f}")
            res["oblique"] = run_oblique(co, bank, 8)
            o = res["oblique"]
            print(f"oblique case: brain Dice with the reference {o['dice_with_reference_brain']:.2f}; "
                  f"map mass outside its brain {o['map_mass_outside_brain']:.1%} (read in "
                  f"physical space: {o['map_mass_outside_brain_physical']:.1%}; goal <= 5%); "
                  f"its populated lesions WM {o['populated_in_WM']:.1%} CSF {o['populated_in_CSF']:.1%}")
            for line in o["notices"]:
                print(f"  notice: {line}")
        results[co.name] = res
    results["machine"] = f"{platform.processor() or platform.machine()}, {platform.python_version()}"
    results["date"] = time.strftime("%Y-%m-%d")
    print()
    save(results, args, "realism")
    return results


if __name__ == "__main__":
    main()
