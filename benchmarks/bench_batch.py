"""Benchmark of ``lesionmix generate`` on 1 mm brain cases with two channels (not a test).

Measured in one run, medians over the repeats during which other processes used less
than 5 % of the CPUs (the machine may be shared; every sample is kept in the file, and a
figure with no clean repeat is reported as missing, not as a median):

- **I/O against SimpleITK** (the goal: ours <= 1.3x): per case, SimpleITK's plain
  ``ReadImage`` + ``WriteImage`` of the same files (the floor) beside our read with every
  check (``Case.read``: gzip CRC and length, header size, NaN, shapes, geometry, labels)
  and our write (``Case.write``: source dtypes, atomic, zlib-ng); ours with the case's
  files in parallel threads (the default) and on one thread;
- **one whole case**: read, synthesis and write inside the task, and their sum;
- **throughput**: synthesised cases per second with 1 and 2 worker processes, and the
  machine's own 2-process ceiling on fixed NumPy/SimpleITK work;
- **one-off setup** (input check, lesion bank, likelihood map: ``read_input``) for 2, 4
  and 8 input cases;
- **compression**: time and size of writing one case at each zlib level.

Two parts run on their own (``batch_scale.py``), each saved to its own file:

- ``--scale``: cases per second at N = 250 and N = 5,000 tiny cases, the code before the
  manifest's journal against this tree's, alternated in one session (``batch_scale.json``);
- ``--memory``: peak resident memory of ``generate`` on one 512 x 512 x 300 int16 case
  against the case's float32 size (the goal: <= 4x) (``batch_memory.json``).

Run::

    python benchmarks/bench_batch.py                 # generates 8 cases into a temp folder
    python benchmarks/bench_batch.py --data DIR --n 24 --repeats 3 --save
    python benchmarks/bench_batch.py --scale --save  # about 15 minutes on 2 cores
    python benchmarks/bench_batch.py --memory --save
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics as st
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import SimpleITK as sitk  # noqa: E402
from batch_scale import memory_peak, scale_runs, scale_summary  # noqa: E402
from common import ForeignCPU, brain_cohort, output_args, save, scratch  # noqa: E402

from napari_lesionmix.batch.dataset import open_dataset  # noqa: E402
from napari_lesionmix.batch.manifest import Manifest, package_versions  # noqa: E402
from napari_lesionmix.batch.options import GenerateOptions  # noqa: E402
from napari_lesionmix.batch.prepare import prepare  # noqa: E402
from napari_lesionmix.batch.runner import generate  # noqa: E402
from napari_lesionmix.core.case import Case  # noqa: E402
from napari_lesionmix.core.image_io import DEFAULT_LEVEL, io_threads, set_io_threads  # noqa: E402
from napari_lesionmix.core.recipe import Recipe  # noqa: E402

TARGET_IO_RATIO = 1.3
TARGET_MEMORY_RATIO = 4.0


BUSY_OK = False  # --busy-ok: with no clean sample, use them all (and say so)


def usable(samples: list[dict]) -> list[dict]:
    """The clean samples; with ``--busy-ok`` and none clean, every sample."""
    clean = [s for s in samples if s["clean"]]
    return clean or (list(samples) if BUSY_OK else [])


def median_clean(samples: list[dict], key: str):
    """Median of ``key`` over the usable samples, None when there is none."""
    values = [s[key] for s in usable(samples)]
    return st.median(values) if values else None


def fmt(value, unit: str = " s", digits: int = 3) -> str:
    return "n/a (no clean repeat)" if value is None else f"{value:.{digits}f}{unit}"


# ------------------------------------------------------------------------------ I/O
def io_samples(data: Path, work: Path, repeats: int) -> list[dict]:
    """Per case and repeat: SimpleITK's plain read+write, ours threaded and on one thread."""
    ds = open_dataset(data)
    threads = io_threads()
    rows = []
    for r in range(repeats):
        for c in ds.cases:
            files = [str(p) for p in c.image_paths] + [str(c.label_path)]
            outs = [work / f"io_{c.name}_{k}.nii.gz" for k in range(len(files))]
            row = {"case": c.name, "repeat": r}
            with ForeignCPU() as foreign:
                t0 = time.perf_counter()
                images = [sitk.ReadImage(f) for f in files]
                t1 = time.perf_counter()
                for img, out in zip(images, outs):
                    sitk.WriteImage(img, str(out))
                t2 = time.perf_counter()
                del images
                row.update(sitk_read=t1 - t0, sitk_write=t2 - t1)
                for label, n_threads in (("ours", threads), ("ours_1thread", 1)):
                    set_io_threads(n_threads)
                    t0 = time.perf_counter()
                    case = Case.read(files[:-1], files[-1], name=c.name)
                    t1 = time.perf_counter()
                    case.write(outs[:-1], outs[-1], overwrite=True, tmp_dir=work / "tmp")
                    t2 = time.perf_counter()
                    row.update({f"{label}_read": t1 - t0, f"{label}_write": t2 - t1})
                    del case
                set_io_threads(threads)
            elapsed = sum(v for k, v in row.items() if k.endswith(("_read", "_write")))
            row["foreign_cpu_s"] = foreign.seconds
            row["clean"] = foreign.clean(elapsed)
            for who in ("sitk", "ours", "ours_1thread"):
                row[f"{who}_io"] = row[f"{who}_read"] + row[f"{who}_write"]
            rows.append(row)
    return rows


def io_summary(rows: list[dict]) -> dict:
    out = {k: median_clean(rows, k) for k in
           ("sitk_read", "sitk_write", "sitk_io", "ours_read", "ours_write", "ours_io",
            "ours_1thread_read", "ours_1thread_write", "ours_1thread_io")}
    for who in ("ours", "ours_1thread"):
        ratios = [r[f"{who}_io"] / r["sitk_io"] for r in usable(rows)]
        out[f"{who}_vs_sitk"] = st.median(ratios) if ratios else None
    out["samples_clean"] = sum(r["clean"] for r in rows)
    out["busy_machine"] = out["samples_clean"] == 0
    out["samples"] = len(rows)
    out["target_ratio"] = TARGET_IO_RATIO
    return out


# ------------------------------------------------------------------------------ setup
def setup_growth(data: Path, work: Path, sizes=(2, 4, 8)) -> list[dict]:
    """The one-off pass over k input cases (a dataset of links to the first k)."""
    ds = open_dataset(data)
    meta = json.loads((data / "dataset.json").read_text())
    rows = []
    for k in sizes:
        if k > len(ds.cases):
            continue
        sub = work / f"setup_{k}"
        for folder in ("imagesTr", "labelsTr"):
            (sub / folder).mkdir(parents=True, exist_ok=True)
        for c in ds.cases[:k]:
            for p in c.files():
                link = sub / p.parent.name / p.name
                if not link.exists():
                    link.symlink_to(p)
        (sub / "dataset.json").write_text(json.dumps(dict(meta, numTraining=k)))
        with ForeignCPU() as foreign:
            t0 = time.perf_counter()
            setup = prepare(open_dataset(sub), Recipe())
            total = time.perf_counter() - t0
        rows.append({"cases": k, "seconds": total, "per_case_s": total / k,
                     "map_and_pass_s": setup.seconds.get("map"), "bank_lesions": len(setup.bank),
                     "foreign_cpu_s": foreign.seconds, "clean": foreign.clean(total)})
    return rows


# ------------------------------------------------------------------------------ throughput
def run_generate(data: Path, n: int, workers: int, work: Path) -> dict:
    out = work / f"out_w{workers}"
    recipe = Recipe(load_distribution="uniform")
    with ForeignCPU() as foreign:
        s = generate(GenerateOptions(input=data, output=out, n=n, workers=workers,
                                     originals=False, overwrite=True, progress=False,
                                     recipe=recipe), say=lambda m: None)
    assert s.exit_code == 0, s.failed
    cases = Manifest.load(out / "manifest.json").cases.values()
    split = {k: st.median(e["seconds"][k] for e in cases) for k in ("read", "synthesis", "write")}
    split["case"] = st.median(sum(e["seconds"][k] for k in ("read", "synthesis", "write"))
                              for e in cases)
    return {"seconds": s.seconds, "cases_per_s": n / s.seconds, "split": split,
            "setup_s": s.setup_seconds, "unchanged": len(s.unchanged),
            "foreign_cpu_s": foreign.seconds, "clean": foreign.clean(s.seconds)}


def _ceiling_work(_=None) -> float:
    import numpy as np
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
    rng = np.random.default_rng(0)
    a = rng.random((96, 128, 128), dtype=np.float32)
    t0 = time.perf_counter()
    for _ in range(3):
        img = sitk.GetImageFromArray(a)
        sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(img, 2.0))
        np.sort(a.ravel()[: 1 << 20])
        s = 0
        for i in range(300_000):
            s += i * i
    return time.perf_counter() - t0


def scaling_ceiling() -> dict:
    """Throughput of 2 processes doing fixed work vs 1 (the machine's own limit)."""
    with ForeignCPU() as foreign, ProcessPoolExecutor(2) as pool:
        list(pool.map(_ceiling_work, range(2)))  # warm up imports
        one = min(pool.submit(_ceiling_work).result() for _ in range(2))
        t0 = time.perf_counter()
        list(pool.map(_ceiling_work, range(4)))
        two = time.perf_counter() - t0
    return {"one_task_s": one, "four_tasks_on_2_workers_s": two, "speedup": 4 * one / two,
            "foreign_cpu_s": foreign.seconds, "clean": foreign.clean(two + 2 * one)}


def compression(data: Path, work: Path, repeats: int, levels=(None, 1, 6, 9)) -> list:
    """Write one case (channels + label) at each zlib level: median time and total size."""
    c = open_dataset(data).cases[0]
    case = Case.read([str(p) for p in c.image_paths], str(c.label_path), name=c.name)
    rows = []
    for level in levels:
        times, size = [], 0
        for r in range(repeats):
            imgs = [work / f"cz_{r}_{k:04d}.nii.gz" for k in range(case.n_channels)]
            lab = work / f"cz_{r}.nii.gz"
            t0 = time.perf_counter()
            case.write(imgs, lab, overwrite=True, compression_level=level, tmp_dir=work / "tmp")
            times.append(time.perf_counter() - t0)
            size = sum(p.stat().st_size for p in imgs + [lab])
        rows.append({"level": f"default ({DEFAULT_LEVEL})" if level is None else level,
                     "write_s": st.median(times), "bytes": size})
    return rows


# ------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", type=Path, default=None,
                   help="an nnU-Net dataset of 1 mm cases (default: generate --cases 1 mm "
                        "brains with a FLAIR-like second channel, float32, in a temp folder)")
    p.add_argument("--cases", type=int, default=8, help="cohort size when generating")
    p.add_argument("--n", type=int, default=24, help="cases to synthesise per run")
    p.add_argument("--repeats", type=int, default=3, help="repeats (medians are reported)")
    p.add_argument("--busy-ok", action="store_true",
                   help="when no repeat is clean (a shared, busy machine), report medians over "
                        "all of them, marked as such; by default such figures are left out")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--scale", action="store_true",
                      help="only cases/s at N = 250 and 5,000 tiny cases, before and after "
                           "the manifest's journal (saved as batch_scale)")
    mode.add_argument("--memory", action="store_true",
                      help="only the peak memory of generate on one 512 x 512 x 300 int16 "
                           "case (saved as batch_memory)")
    p.add_argument("--large-repeats", type=int, default=1,
                   help="with --scale: repeats at N = 5,000 (--repeats is for N = 250)")
    output_args(p, "batch")
    a = p.parse_args(argv)
    if a.scale or a.memory:
        return scale_or_memory(a)
    global BUSY_OK
    BUSY_OK = a.busy_ok
    with scratch() as work:
        data = a.data
        if data is None:
            print(f"generating {a.cases} 1 mm brain cases (T1 + FLAIR-like, float32) ...",
                  flush=True)
            data = brain_cohort(work / "cohort", a.cases, "--channels", "t1,flair",
                                "--dtype", "float32")
        load0 = os.getloadavg()[0]
        ceiling = scaling_ceiling()
        print(f"machine scaling ceiling: {ceiling['speedup']:.2f}x with 2 processes"
              + ("" if ceiling["clean"] else " (busy machine)"), flush=True)
        io_rows = io_samples(data, work, a.repeats)
        io = io_summary(io_rows)
        print(f"I/O per case: SimpleITK read {fmt(io['sitk_read'])} + write "
              f"{fmt(io['sitk_write'])} = {fmt(io['sitk_io'])}; ours read "
              f"{fmt(io['ours_read'])} + write {fmt(io['ours_write'])} = {fmt(io['ours_io'])} "
              f"-> {fmt(io['ours_vs_sitk'], 'x', 2)} (target <= {TARGET_IO_RATIO}x; on one "
              f"thread {fmt(io['ours_1thread_vs_sitk'], 'x', 2)}); "
              f"{io['samples_clean']}/{io['samples']} clean samples"
              + (" (busy machine: medians over all samples)" if io["busy_machine"] and BUSY_OK
                 else ""), flush=True)
        setup = setup_growth(data, work)
        for row in setup:
            print(f"setup for {row['cases']} input cases: {row['seconds']:.2f} s "
                  f"({row['per_case_s']:.3f} s per case)"
                  + ("" if row["clean"] else " (busy machine)"), flush=True)
        runs = {1: [], 2: []}
        for r in range(a.repeats):
            for w in (1, 2):
                res = run_generate(data, a.n, w, work)
                runs[w].append(res)
                print(f"repeat {r + 1}: {w} worker(s): {res['cases_per_s']:.3f} cases/s "
                      f"({res['seconds']:.1f} s for {a.n}; other processes used "
                      f"{res['foreign_cpu_s']:.1f} CPU s{'' if res['clean'] else ': discarded'})",
                      flush=True)
        thr = {}
        for w in (1, 2):
            clean = usable(runs[w])
            thr[w] = {"cases_per_s": st.median(x["cases_per_s"] for x in clean) if clean else None,
                      "split_median_s": ({k: st.median(x["split"][k] for x in clean)
                                          for k in ("read", "synthesis", "write", "case")}
                                         if clean else None),
                      "repeats_clean": sum(x["clean"] for x in runs[w]),
                      "busy_machine": not any(x["clean"] for x in runs[w]),
                      "all_runs": runs[w]}
        speedup = (thr[2]["cases_per_s"] / thr[1]["cases_per_s"]
                   if thr[1]["cases_per_s"] and thr[2]["cases_per_s"] else None)
        comp = compression(data, work, a.repeats)
        c0 = open_dataset(data).cases[0]
        shape = Case.read([str(p) for p in c0.image_paths], str(c0.label_path)).spatial_shape
        result = {
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "load_average_at_start": load0, **package_versions()},
            "cohort": {"path": str(a.data) if a.data else "generated (temporary)",
                       "cases": len(open_dataset(data).cases), "channels": len(c0.image_paths),
                       "shape_zyx": list(shape)},
            "n_per_run": a.n, "repeats": a.repeats, "busy_ok": a.busy_ok,
            "io_per_case_s": io, "io_samples": io_rows,
            "setup": setup,
            "throughput": thr, "speedup_2_vs_1": speedup, "machine_scaling_ceiling": ceiling,
            "compression": comp,
        }
        print()
        for w in (1, 2):
            sp = thr[w]["split_median_s"]
            busy = " [busy machine: all repeats]" if thr[w]["busy_machine"] and BUSY_OK else ""
            print(f"{w} worker(s){busy}: {fmt(thr[w]['cases_per_s'], ' cases/s')}"
                  + ("" if sp is None else
                     f"; per case read {sp['read']:.3f} s, synthesis {sp['synthesis']:.3f} s, "
                     f"write {sp['write']:.3f} s, whole case {sp['case']:.3f} s"))
        print(f"speed-up 2 vs 1 worker: {fmt(speedup, 'x', 2)} (machine ceiling "
              f"{ceiling['speedup']:.2f}x)")
        for row in comp:
            print(f"compression {row['level']!s:>11}: write {row['write_s']:.3f} s, "
                  f"{row['bytes'] / 1e6:.2f} MB")
        save(result, a, "batch")
    return 0


def scale_or_memory(a) -> int:
    """``--scale`` or ``--memory``: run that part, print and save it."""
    head = {"when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "load_average_at_start": os.getloadavg()[0], **package_versions()}}
    with scratch() as work:
        if a.scale:
            rows = scale_runs(work, repeats=(a.repeats, a.large_repeats))
            summary = scale_summary(rows)
            print()
            for row in summary:
                b, f = row["before"], row["after"]
                print(f"N={row['n']}: {b['cases_per_s']:.1f} -> {f['cases_per_s']:.1f} cases/s "
                      f"({row['speedup']:.2f}x; medians of {f['runs']}); last tenth of the "
                      f"run {b['last_tenth_ms_per_case']:.1f} -> "
                      f"{f['last_tenth_ms_per_case']:.1f} ms per case")
            save({**head, "scale": summary, "runs": rows}, a, "batch_scale")
        else:
            row = memory_peak(work)
            print(f"peak memory of generate on {row['shape_zyx']} int16: "
                  f"{row['hwm_over_float32']:.2f}x the case's float32 size "
                  f"({row['float32_bytes'] / 2**20:.0f} MiB; the high-water mark; "
                  f"{row['peak_over_float32']:.2f}x in 5 ms samples; target <= "
                  f"{TARGET_MEMORY_RATIO}x); lesion loads (start, achieved) mm3: "
                  f"{row['loads_mm3']}")
            save({**head, "memory": row, "target_ratio": TARGET_MEMORY_RATIO}, a,
                 "batch_memory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
