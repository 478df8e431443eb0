"""Engine benchmark on the 1 mm brain sample (197×233×189): populate, inpaint, a whole
case to twice its load, peak memory, and CarveMix's core cost as the reference.

Run: ``python benchmarks/bench_engine.py [--repeats N] [--save]`` (``--save`` updates
``benchmarks/results/engine.json``; by default the figures go to a temporary file).

The 1 mm cohort is generated into a temporary folder, removed at the end. The recipe
uses the default likelihood floor. All times are medians over repeats, measured in one
run, so that ratios are meaningful on a shared, noisy machine. Nothing here is a
pass/fail test; the targets are printed beside the figures.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import brain_cohort, output_args, save, scratch  # noqa: E402

from napari_lesionmix.core.case import Case  # noqa: E402
from napari_lesionmix.core.edits import CaseContext  # noqa: E402
from napari_lesionmix.core.lesions import LesionBank, find_lesions, lesion_load  # noqa: E402
from napari_lesionmix.core.likelihood import LikelihoodMap  # noqa: E402
from napari_lesionmix.core.mix import inpaint_step, location_sampler, populate_step, synthesize  # noqa: E402
from napari_lesionmix.core.recipe import Recipe  # noqa: E402

TARGETS = {"populate_ms": 10.0, "inpaint_ms": 15.0, "whole_case_s": 0.3,
           "whole_case_vs_reference": 0.25, "peak_memory_vs_case": 8.0}


def brain_1mm(folder: Path, n: int = 2) -> list[Case]:
    """The 1 mm brain cohort, generated into ``folder``."""
    data = brain_cohort(folder, n)
    cases = []
    for lab in sorted((data / "labelsTr").glob("*.nii.gz"))[:n]:
        name = lab.name[: -len(".nii.gz")]
        cases.append(Case.read([data / "imagesTr" / f"{name}_0000.nii.gz"], lab, name=name))
    return cases


def median_ms(samples) -> float:
    return 1000.0 * statistics.median(samples)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30, help="operations timed per figure")
    ap.add_argument("--cases", type=int, default=5, help="whole cases timed")
    output_args(ap, "engine")
    args = ap.parse_args(argv)

    with scratch() as work:
        cases = brain_1mm(work, 2)
    case = cases[0]
    recipe = Recipe(lesion_classes=[1], likelihood={"sigma_mm": 2.0})  # default floor
    bank = LesionBank.from_recipe(cases, recipe)
    lmap = LikelihoodMap.from_recipe(cases, recipe)
    load, voxels = lesion_load(case.labels, [1], case.geometry.spacing_zyx)
    lesions = find_lesions(case.labels, [1], case.geometry.spacing_zyx)
    print(f"case {case.name}: shape {case.labels.shape}, {len(lesions)} lesions, "
          f"load {load / 1000:.2f} ml ({voxels} voxels); bank {len(bank)} lesions")

    rng = np.random.default_rng(0)
    # --- one populate operation (augment + place + insert), on a working copy
    work = case.copy()
    ctx = CaseContext(work, recipe)
    sampler = location_sampler(work, lmap, ctx)
    populate_t, accepted = [], 0
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        op = populate_step(work, bank, sampler, ctx, rng)
        populate_t.append(time.perf_counter() - t0)
        accepted += op.accepted
    # --- one inpaint operation, each on a fresh lesion of the source case
    work = case.copy()
    ctx = CaseContext(work, recipe)
    inpaint_t = []
    for k in range(min(args.repeats, len(lesions))):
        t0 = time.perf_counter()
        inpaint_step(work, lesions[k], ctx, rng)
        inpaint_t.append(time.perf_counter() - t0)
    # --- a whole case to twice its load (compute only)
    whole_t, statuses, ops = [], [], []
    for s in range(args.cases):
        t0 = time.perf_counter()
        out = synthesize(case, bank, lmap, recipe, seed=s, target_load=2 * load)
        whole_t.append(time.perf_counter() - t0)
        statuses.append(out.provenance.status)
        ops.append(len(out.provenance.operations))
    # --- peak memory of one whole case
    tracemalloc.start()
    synthesize(case, bank, lmap, recipe, seed=123, target_load=2 * load)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    case_bytes = case.channels.size * 4 + case.labels.nbytes
    # --- reference: two full-volume Euclidean distance transforms (CarveMix's core)
    ref_t = []
    mask = case.labels > 0
    for _ in range(3):
        t0 = time.perf_counter()
        ndi.distance_transform_edt(mask, sampling=case.geometry.spacing_zyx)
        ndi.distance_transform_edt(~mask, sampling=case.geometry.spacing_zyx)
        ref_t.append(time.perf_counter() - t0)

    res = {
        "shape": list(case.labels.shape),
        "lesions": len(lesions),
        "load_ml": load / 1000,
        "populate_ms": median_ms(populate_t),
        "populate_accepted": f"{accepted}/{len(populate_t)}",
        "inpaint_ms": median_ms(inpaint_t),
        "whole_case_s": statistics.median(whole_t),
        "whole_case_ops_median": statistics.median(ops),
        "whole_case_status": statuses,
        "reference_two_edt_s": statistics.median(ref_t),
        "peak_memory_mb": peak / 2**20,
        "case_float32_mb": case_bytes / 2**20,
        "machine": f"{platform.processor() or platform.machine()}, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    res["whole_case_vs_reference"] = res["whole_case_s"] / res["reference_two_edt_s"]
    res["peak_memory_vs_case"] = peak / case_bytes
    res["targets"] = TARGETS
    print(f"populate, one operation   {res['populate_ms']:8.2f} ms   (target <= 10 ms; "
          f"{res['populate_accepted']} placed)")
    print(f"inpaint, one operation    {res['inpaint_ms']:8.2f} ms   (target <= 15 ms)")
    print(f"whole case to 2x load     {res['whole_case_s']:8.3f} s    (target <= 0.3 s; "
          f"{res['whole_case_ops_median']} operations, {statuses[0]})")
    print(f"reference: 2 EDTs         {res['reference_two_edt_s']:8.3f} s    "
          f"ratio {res['whole_case_vs_reference']:.3f} (target <= 0.25)")
    print(f"peak memory               {res['peak_memory_mb']:8.1f} MB   "
          f"{res['peak_memory_vs_case']:.2f}x the case's float32 size (target <= 8x)")
    save(res, args, "engine")
    return res


if __name__ == "__main__":
    main()
