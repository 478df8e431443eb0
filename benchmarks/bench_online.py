"""Training-time LesionMix on the 1 mm brain sample: extra time per training sample (whole
case through TorchIO, and patches as nnU-Net's loader cuts them) against the sample's own
load time and nnU-Net's default augmentation of the same patches, and memory per
data-loader worker with a 500-lesion bank, mapped or copied.

Run: ``python benchmarks/bench_online.py [--samples N] [--save]`` (``--save`` updates
``benchmarks/results/online.json``; by default the figures go to a temporary file).

Everything runs on one thread, as in a data-loader worker, in one run: medians and means
over the same samples, so that ratios mean something on a shared machine (the nnU-Net
figures also in CPU time, which leaves out waiting for a core). LesionMix is
timed on every sample (p = 1); with the recipe's ``online.p`` the expected cost per
sample is p times that. The nnU-Net patch is nnU-Net's own: for a 128³ final patch its
loader cuts a larger patch (room for rotation), which both nnU-Net's default training
transforms (``nnUNetTrainer.get_training_transforms``) and LesionMix (first among them in
``nnUNetTrainerLesionMix``) receive; LesionMix is also timed on the 128³ centre of each
patch alone, what a pipeline that crops first (TorchIO's or MONAI's patch samplers) pays.
The cases are z-scored over their non-zero region,
with nnU-Net's -1 outside it, as nnU-Net's preprocessing leaves an MR brain.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import brain_cohort, output_args, save, scratch  # noqa: E402

from napari_lesionmix.batch.memory import MemorySource  # noqa: E402
from napari_lesionmix.batch.tasks import limit_threads  # noqa: E402
from napari_lesionmix.core.case import Case  # noqa: E402
from napari_lesionmix.core.lesions import BankEntry, Lesion, LesionBank  # noqa: E402
from napari_lesionmix.core.recipe import Recipe  # noqa: E402

TARGET_SHARE = 0.25  # LesionMix <= 25 % of nnU-Net's default augmentation per sample


def stats(samples) -> dict:
    s = [float(v) for v in samples]
    return {"median_ms": 1000 * statistics.median(s), "mean_ms": 1000 * statistics.fmean(s),
            "n": len(s)}


def zscored(case: Case) -> Case:
    """The case as nnU-Net's preprocessing leaves an MR brain: z-scored over the non-zero
    region, placement = that region (nnU-Net's seg is -1 outside it)."""
    fg = case.channels[0] != 0
    ch = case.channels.copy()
    vals = ch[0][fg]
    ch[0][fg] = (vals - vals.mean()) / vals.std()
    return Case(ch, case.labels.copy(), case.geometry, name=case.name, placement=fg,
                image_dtypes=["float32"])


def nnunet_patch(case: Case, rng, size) -> tuple:
    """A patch as nnU-Net's loader cuts it (a third of them centred on a lesion voxel),
    zero-padded image and -1-padded seg; returns (image, seg, corner)."""
    shape = np.array(case.spatial_shape)
    size = np.array(size)
    if rng.random() < 1 / 3:
        vox = np.argwhere(case.labels > 0)
        centre = vox[rng.integers(len(vox))]
    else:
        centre = np.array([rng.integers(0, n) for n in shape])
    lo = centre - size // 2
    img = np.zeros((1, *size), np.float32)
    seg = np.full((1, *size), -1, np.int16)
    src = tuple(slice(max(a, 0), min(a + n, m)) for a, n, m in zip(lo, size, shape))
    dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, lo))
    img[(0,) + dst] = case.channels[(0,) + src]
    lab = case.labels[src].astype(np.int16)
    lab[~case.placement[src]] = -1
    seg[(0,) + dst] = lab
    return img, seg, [int(v) for v in lo]


def time_nnunet(cases, prepared, n: int, rng) -> dict:
    import torch
    from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    from napari_lesionmix.integrations.nnunet.transform import Counters, LesionMixTransform
    from napari_lesionmix.integrations.online import OnlineLesionMix

    final = (128, 128, 128)
    rot = (-30 / 360 * 2 * math.pi, 30 / 360 * 2 * math.pi)
    initial = [int(v) for v in get_patch_size(final, rot, rot, rot, (0.85, 1.25))]
    default = nnUNetTrainer.get_training_transforms(
        np.array(final), rot, [[1, 1, 1], [0.5] * 3, [0.25] * 3, [0.125] * 3, [0.0625] * 3],
        (0, 1, 2), False, use_mask_for_norm=[True], foreground_labels=[1])
    counters = Counters()
    mix = LesionMixTransform(OnlineLesionMix(prepared), counters)
    mix.mix.recipe = mix.mix.recipe.replace(online={"p": 1.0, "direction": "both"})
    small = LesionMixTransform(mix.mix)  # the same, on the 128³ centre of each patch
    t_crop, t_default, t_mix, changed = [], [], [], 0
    cpu = {k: [] for k in ("crop", "nnunet_default", "lesionmix", "lesionmix_final_patch")}
    t_small, changed_small = [], 0  # LesionMix on the final 128³ patch alone
    inset = [(a - b) // 2 for a, b in zip(initial, final)]
    inner = (slice(None),) + tuple(slice(a, a + b) for a, b in zip(inset, final))
    for i in range(n):
        case = cases[i % len(cases)]
        t0, c0 = time.perf_counter(), time.process_time()
        img, seg, lo = nnunet_patch(case, rng, initial)
        t_crop.append(time.perf_counter() - t0)
        cpu["crop"].append(time.process_time() - c0)
        image, segmentation = torch.from_numpy(img), torch.from_numpy(seg)
        mix.where = (case.name, lo)
        before = segmentation.clone()
        t0, c0 = time.perf_counter(), time.process_time()
        mix(image=image, segmentation=segmentation)
        t_mix.append(time.perf_counter() - t0)
        cpu["lesionmix"].append(time.process_time() - c0)
        changed += int(not torch.equal(before, segmentation))
        small_img = torch.from_numpy(img[inner].copy())
        small_seg = torch.from_numpy(seg[inner].copy())
        small_before = small_seg.clone()
        small.where = (case.name, [a + b for a, b in zip(lo, inset)])
        t0, c0 = time.perf_counter(), time.process_time()
        small(image=small_img, segmentation=small_seg)
        t_small.append(time.perf_counter() - t0)
        cpu["lesionmix_final_patch"].append(time.process_time() - c0)
        changed_small += int(not torch.equal(small_before, small_seg))
        t0, c0 = time.perf_counter(), time.process_time()
        default(image=image.clone(), segmentation=segmentation.clone())
        t_default.append(time.perf_counter() - t0)
        cpu["nnunet_default"].append(time.process_time() - c0)
    out = {"final_patch": list(final), "loader_patch": initial, "crop": stats(t_crop),
           "nnunet_default": stats(t_default), "lesionmix": stats(t_mix),
           "patches_changed": changed}
    done = counters.since_last()
    ops = done["added"] + done["removed"]
    # what the time goes to: lesions added and removed per patch, and the time per such
    # operation (the patch's whole LesionMix time over its operations)
    out["operations"] = {"added": int(done["added"]), "removed": int(done["removed"]),
                         "per_patch": ops / n,
                         "ms_per_operation": 1000 * sum(t_mix) / ops if ops else None}
    out["lesionmix_final_patch"] = stats(t_small)
    # CPU time of the process: what each costs when the shared machine is busy (wall
    # time also counts waiting for a core)
    out["cpu"] = {k: stats(v) for k, v in cpu.items()}
    for k in ("lesionmix", "lesionmix_final_patch"):
        for m in ("median_ms", "mean_ms"):
            out["cpu"][f"{k}_vs_default_{m[:-3]}"] = out["cpu"][k][m] / out["cpu"]["nnunet_default"][m]
    out["final_patches_changed"] = changed_small
    for k in ("median_ms", "mean_ms"):
        out[f"lesionmix_vs_default_{k[:-3]}"] = out["lesionmix"][k] / out["nnunet_default"][k]
        out[f"lesionmix_final_patch_vs_default_{k[:-3]}"] = (
            out["lesionmix_final_patch"][k] / out["nnunet_default"][k])
    return out


def time_torchio(data_dir: Path, prepared, names, n: int) -> dict:
    import torch
    import torchio as tio

    from napari_lesionmix.integrations.torchio import RandomLesionMix

    transform = RandomLesionMix(prepared, p=1.0)
    t_load, t_mix, changed = [], [], 0
    torch.manual_seed(0)
    for i in range(n):
        name = names[i % len(names)]
        t0 = time.perf_counter()
        subject = tio.Subject(t1=tio.ScalarImage(data_dir / "imagesTr" / f"{name}_0000.nii.gz"),
                              seg=tio.LabelMap(data_dir / "labelsTr" / f"{name}.nii.gz"))
        subject.load()
        t_load.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out = transform(subject)
        t_mix.append(time.perf_counter() - t0)
        changed += int(not torch.equal(out.seg.data, subject.seg.data))
    res = {"load": stats(t_load), "lesionmix": stats(t_mix), "cases_changed": changed}
    for k in ("median_ms", "mean_ms"):
        res[f"lesionmix_vs_load_{k[:-3]}"] = res["lesionmix"][k] / res["load"][k]
    return res


# ------------------------------------------------------------------ memory per worker
def _smaps() -> dict:
    out = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        out[key.strip()] = int(value.split()[0])  # kB
    return {"rss_mb": out["Rss"] / 1024, "pss_mb": out["Pss"] / 1024,
            "uss_mb": (out["Private_Clean"] + out["Private_Dirty"]) / 1024}


def _worker(path: str, barrier, queue) -> None:
    """One data-loader-like worker: measure, open the bank (lazily, as the transforms
    do), read every patch, wait until every worker holds it, measure again."""
    import torch  # noqa: F401 - a worker of a training loader has torch loaded
    before = _smaps()
    bank = LesionBank.load(path)
    total = sum(float(e.image.sum()) + float(e.mask.sum()) for e in bank.entries)
    barrier.wait()  # every worker maps the bank now: shared pages count as shared
    after = _smaps()
    queue.put({"pid": os.getpid(), "before": before, "after": after, "checksum": total})
    barrier.wait()  # keep the bank until every worker has measured


def memory_per_worker(bank: LesionBank, folder: Path, workers: int) -> dict:
    """What the bank adds to each of ``workers`` fresh worker processes (spawned) that all
    hold it at once: USS (its own pages) and PSS (its share of the shared ones)."""
    import multiprocessing as mp

    from napari_lesionmix.core.bank_files import save_bank_folder

    mapped = save_bank_folder(bank, folder / "bank_folder")
    copied = folder / "bank.npz"
    bank.save(copied)
    out = {"lesions": len(bank), "workers": workers,
           "bank_mb": sum(f.stat().st_size for f in mapped.glob("*.npy")) / 2**20}
    ctx = mp.get_context("spawn")
    for kind, path in (("mapped", mapped), ("copied", copied)):
        barrier, queue = ctx.Barrier(workers), ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(str(path), barrier, queue))
                 for _ in range(workers)]
        for proc in procs:
            proc.start()
        rows = [queue.get(timeout=600) for _ in procs]
        for proc in procs:
            proc.join()
        out[kind] = {k: statistics.fmean(r["after"][k] - r["before"][k] for r in rows)
                     for k in ("rss_mb", "pss_mb", "uss_mb")}
    return out


def bank_of(bank: LesionBank, n: int) -> LesionBank:
    """``n`` entries cycling through ``bank``'s lesions (distinct keys, each with its own
    copy of the arrays): a bank of ``n`` lesions from the cohort's real ones."""
    entries = []
    for i in range(n):
        e = bank.entries[i % len(bank)]
        les = Lesion(**{**vars(e.lesion), "component": 10000 * (i // len(bank)) + e.lesion.component})
        entries.append(BankEntry(les, e.image.copy(), e.mask.copy(), e.stats, e.spacing_zyx,
                                 e.source, None if e.context is None else e.context.copy()))
    out = LesionBank(entries, bank.connectivity, bank.margin, bank.min_voxels)
    out.case_loads = dict(bank.case_loads)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=24, help="samples timed per figure")
    ap.add_argument("--cases", type=int, default=6, help="1 mm brain cases generated")
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 4],
                    help="numbers of worker processes for the memory figure")
    ap.add_argument("--lesions", type=int, default=500, help="bank size for the memory figure")
    output_args(ap, "online")
    args = ap.parse_args(argv)
    limit_threads()
    import torch
    torch.set_num_threads(1)

    from napari_lesionmix.batch.dataset import open_dataset
    from napari_lesionmix.integrations.prepared import write_prepared

    rng = np.random.default_rng(0)
    result = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
              "samples": args.samples}
    with scratch() as work:
        data_dir = brain_cohort(work, args.cases)
        recipe = Recipe.from_json(data_dir / "lesionmix_recipe.json")
        raw = write_prepared(open_dataset(data_dir), recipe, work / "prep_raw",
                             description="1 mm brain")
        names = sorted(raw.cases)
        cases = [zscored(Case.read([data_dir / "imagesTr" / f"{n}_0000.nii.gz"],
                                   data_dir / "labelsTr" / f"{n}.nii.gz", name=n)) for n in names]
        result["case_shape"] = list(cases[0].spatial_shape)
        result["recipe_p"] = recipe.online.p
        print(f"{len(cases)} cases {cases[0].spatial_shape}, bank {len(raw.bank)} lesions")
        # the nnU-Net path: bank, map (on every case's grid) and loads of the z-scored cases
        source = MemorySource(cases, {"0": "T1"}, {"background": 0, "lesion": 1})
        pre = write_prepared(source, recipe, work / "prep_nnunet", case_maps=True)
        result["nnunet_patch"] = time_nnunet(cases, pre, args.samples, rng)
        result["torchio_whole_case"] = time_torchio(data_dir, raw, names, args.samples)
        big = bank_of(raw.bank, args.lesions)
        result["memory_per_worker"] = [memory_per_worker(big, work / f"mem{w}", w)
                                       for w in args.workers]
    nn, tw, mem = result["nnunet_patch"], result["torchio_whole_case"], result["memory_per_worker"]
    p = recipe.online.p
    print(f"nnU-Net patch {nn['loader_patch']} (final {nn['final_patch']}), {nn['lesionmix']['n']} patches, "
          f"{nn['patches_changed']} changed by LesionMix:")
    for key in ("crop", "nnunet_default", "lesionmix", "lesionmix_final_patch"):
        print(f"  {key:21s} median {nn[key]['median_ms']:7.1f} ms  mean {nn[key]['mean_ms']:7.1f} ms")
    ops = nn["operations"]
    print(f"  {ops['added']} lesions added, {ops['removed']} removed: {ops['per_patch']:.1f} "
          f"operations per patch, {ops['ms_per_operation'] or 0:.1f} ms per operation")
    print(f"  LesionMix / nnU-Net default: median {nn['lesionmix_vs_default_median']:.2f}, mean "
          f"{nn['lesionmix_vs_default_mean']:.2f}; with p = {p}: mean "
          f"{p * nn['lesionmix_vs_default_mean']:.2f} (goal <= {TARGET_SHARE})")
    print(f"  LesionMix on the {nn['final_patch']} patch alone ({nn['final_patches_changed']} changed) / "
          f"nnU-Net default: median {nn['lesionmix_final_patch_vs_default_median']:.2f}, mean "
          f"{nn['lesionmix_final_patch_vs_default_mean']:.2f}; with p = {p}: mean "
          f"{p * nn['lesionmix_final_patch_vs_default_mean']:.2f}")
    c = nn["cpu"]
    print("  CPU time: " + ", ".join(f"{k} {c[k]['median_ms']:.1f}/{c[k]['mean_ms']:.1f} ms"
                                      for k in ("nnunet_default", "lesionmix", "lesionmix_final_patch"))
          + f" (median/mean); LesionMix / default: median {c['lesionmix_vs_default_median']:.2f}, "
          f"mean {c['lesionmix_vs_default_mean']:.2f}; 128³ alone: median "
          f"{c['lesionmix_final_patch_vs_default_median']:.2f}, mean "
          f"{c['lesionmix_final_patch_vs_default_mean']:.2f}")
    print(f"TorchIO whole case: load median {tw['load']['median_ms']:.1f} ms, LesionMix median "
          f"{tw['lesionmix']['median_ms']:.1f} ms (mean {tw['lesionmix']['mean_ms']:.1f}): "
          f"{tw['lesionmix_vs_load_median']:.2f}x the load time")
    for m in mem:
        print(f"memory per worker, {m['lesions']}-lesion bank ({m['bank_mb']:.1f} MB of patches), "
              f"{m['workers']} workers: mapped USS +{m['mapped']['uss_mb']:.1f} MB, PSS "
              f"+{m['mapped']['pss_mb']:.1f} MB; copied USS +{m['copied']['uss_mb']:.1f} MB, "
              f"PSS +{m['copied']['pss_mb']:.1f} MB")
    save(result, args, "online")
    return result


if __name__ == "__main__":
    main()
