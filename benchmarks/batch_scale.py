"""Parts of ``bench_batch.py`` run on their own: throughput against N, and peak memory.

- :func:`scale_runs` (``bench_batch.py --scale``): ``lesionmix generate`` of N = 250 and
  N = 5,000 tiny cases (8 x 16 x 16 voxels, one channel, 1 worker), each run in a fresh
  process, this tree's code alternated with the code before the manifest's journal
  (``git archive`` of :data:`BEFORE_JOURNAL`): what the run costs per case beside the
  engine (recording each case, the manifest, the plan, the finish), which must not grow
  with N.
- :func:`memory_peak` (``bench_batch.py --memory``): peak resident memory of ``lesionmix
  generate --workers 1`` on one 512 x 512 x 300 int16 case (the issue's case), in a child
  process, as a multiple of the case's float32 size; with ``--trace`` the NumPy
  allocations alive at the peak, by line (``tracemalloc``), to find the copies.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from napari_lesionmix.core.case import Case
from napari_lesionmix.core.geometry import Geometry

ROOT = Path(__file__).resolve().parent.parent


def tiny_dataset(folder: Path, n_cases: int = 3, shape=(8, 16, 16)) -> Path:
    """An nnU-Net dataset of ``n_cases`` tiny int16 cases with a few cubic lesions."""
    rng = np.random.default_rng(0)
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(exist_ok=True)
    for i in range(n_cases):
        img = rng.normal(100, 5, shape).astype(np.float32)
        lab = np.zeros(shape, np.uint8)
        for _ in range(1 + i % 2):
            z, y, x = (rng.integers(1, s - 4) for s in shape)
            lab[z:z + 2, y:y + 3, x:x + 3] = 1
        img[lab > 0] += 40
        case = Case.from_arrays(img, lab, Geometry.identity(3), name=f"t{i:02d}")
        case.image_dtypes = ["int16"]
        case.write([folder / "imagesTr" / f"t{i:02d}_0000.nii.gz"],
                   folder / "labelsTr" / f"t{i:02d}.nii.gz")
    (folder / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "T1"}, "labels": {"background": 0, "lesion": 1},
        "numTraining": n_cases, "file_ending": ".nii.gz"}))
    return folder


#: the last commit before the manifest's journal (a whole pretty-printed manifest.json
#: rewritten after every case): the "before" of :func:`scale_runs`
BEFORE_JOURNAL = "6ca00a3"

_SCALE_CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
import numpy as np
from napari_lesionmix.batch.options import GenerateOptions
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.core.recipe import Recipe
marks = []
t0 = time.perf_counter()
s = generate(GenerateOptions(input=Path({data!r}), output=Path({out!r}), n={n}, workers=1,
                             originals=False, progress=False,
                             recipe=Recipe(load_distribution="uniform")),
             say=lambda m: None, on_result=lambda r: marks.append(time.perf_counter()))
assert s.exit_code == 0, s.failed
gaps = np.diff([t0 + s.setup_seconds] + marks)
tenth = max(len(gaps) // 10, 1)
print(json.dumps({{"seconds": time.perf_counter() - t0, "run_seconds": s.seconds,
                  "cases_per_s": {n} / s.seconds,
                  "first_tenth_ms_per_case": 1000 * float(np.median(gaps[:tenth])),
                  "last_tenth_ms_per_case": 1000 * float(np.median(gaps[-tenth:]))}}))
"""


def code_tree(work: Path, commit: str) -> Path:
    """The package as it was at ``commit`` (``git archive``), to run the "before"."""
    tree = work / f"code-{commit}"
    tree.mkdir()
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "napari_lesionmix"],
                         capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=tar, check=True)
    return tree


def scale_runs(work: Path, sizes=(250, 5000), repeats=(3, 1),
               before: str = BEFORE_JOURNAL) -> list[dict]:
    """Cases per second of whole runs of N tiny cases with 1 worker, the code of
    ``before`` against this tree's, alternated in one session (each run in a fresh
    process), and the time per case at the start and the end of each run."""
    data = tiny_dataset(work / "tiny")
    trees = {"before": code_tree(work, before), "after": ROOT}
    rows = []
    for n, reps in zip(sizes, repeats):
        for r in range(reps):
            for label, tree in trees.items():
                out = work / f"scale_{label}_{n}_{r}"
                code = _SCALE_CHILD.format(root=str(tree), data=str(data), out=str(out), n=n)
                res = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                     text=True, cwd=work)
                if res.returncode:
                    raise RuntimeError(f"{label} N={n}: {res.stderr[-2000:]}")
                row = json.loads(res.stdout.strip().splitlines()[-1])
                row.update(code=label, commit=before if label == "before" else "this tree",
                           n=n, repeat=r, workers=1,
                           manifest_bytes=(out / "manifest.json").stat().st_size)
                rows.append(row)
                print(f"N={n} repeat {r + 1} {label}: {row['cases_per_s']:.1f} cases/s, "
                      f"{row['first_tenth_ms_per_case']:.1f} -> "
                      f"{row['last_tenth_ms_per_case']:.1f} ms per case", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    return rows


def scale_summary(rows: list[dict]) -> list[dict]:
    """Medians per N and code, and after/before ratios."""
    out = []
    for n in sorted({r["n"] for r in rows}):
        med = {}
        for label in ("before", "after"):
            mine = [r for r in rows if r["n"] == n and r["code"] == label]
            med[label] = {k: float(np.median([r[k] for r in mine]))
                          for k in ("cases_per_s", "first_tenth_ms_per_case",
                                    "last_tenth_ms_per_case")} | {"runs": len(mine)}
        out.append({"n": n, **med,
                    "speedup": med["after"]["cases_per_s"] / med["before"]["cases_per_s"]})
    return out


# ------------------------------------------------------------------------------ memory
_CHILD = r"""
import json, os, sys, time, threading
sys.path.insert(0, {root!r})
from pathlib import Path
trace = {trace!r}
if trace:
    import tracemalloc
    tracemalloc.start(8)
from napari_lesionmix.batch.manifest import Manifest
from napari_lesionmix.batch.options import GenerateOptions
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.core.recipe import Recipe

def rss_kb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])

base = rss_kb("VmRSS:")
peak = [base]
stop = threading.Event()
def sample():
    while not stop.wait(0.005):
        peak[0] = max(peak[0], rss_kb("VmRSS:"))
t = threading.Thread(target=sample, daemon=True); t.start()
t0 = time.perf_counter()
recipe = Recipe(load_distribution="fixed", load={{"value": {target!r}}})
s = generate(GenerateOptions(input=Path({data!r}), output=Path({out!r}), n={n}, workers=1,
                             originals=False, progress=False, recipe=recipe),
             say=lambda m: None)
seconds = time.perf_counter() - t0
stop.set(); t.join()
cases = Manifest.load(Path({out!r}) / "manifest.json").written().values()
res = {{"exit_code": s.exit_code, "seconds": seconds, "rss_before_kb": base,
        "loads_mm3": [[c.get("start_load_mm3"), c.get("achieved_load_mm3")] for c in cases],
        "unchanged": sum(bool(c.get("unchanged")) for c in cases),
        "rss_peak_kb": max(peak[0], 0), "vm_hwm_kb": rss_kb("VmHWM:")}}
if trace:
    cur, top = tracemalloc.get_traced_memory()
    res["tracemalloc_peak_bytes"] = top
print(json.dumps(res))
"""


def big_case(folder: Path, shape=(300, 512, 512)) -> Path:
    """One int16 case of ``shape`` (z, y, x) with a few lesions, as an nnU-Net dataset."""
    rng = np.random.default_rng(1)
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(exist_ok=True)
    img = (rng.normal(300, 20, shape)).astype(np.int16)
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    body = ((zz - shape[0] / 2) / (0.45 * shape[0])) ** 2 + (
        (yy - shape[1] / 2) / (0.45 * shape[1])) ** 2 + ((xx - shape[2] / 2) / (0.45 * shape[2])) ** 2 <= 1
    img[~body] = 0
    lab = np.zeros(shape, np.uint8)
    for c in ((150, 256, 200), (120, 300, 300), (180, 220, 320)):
        d = ((zz - c[0]) / 4) ** 2 + ((yy - c[1]) / 6) ** 2 + ((xx - c[2]) / 6) ** 2 <= 1
        lab[d] = 1
        img[d] += 80
    del body
    case = Case(img[None].astype(np.float32), lab, Geometry((0.7, 0.7, 1.0), (0, 0, 0),
                                                              tuple(np.eye(3).ravel())),
                name="big00", image_dtypes=["int16"])
    case.write([folder / "imagesTr" / "big00_0000.nii.gz"], folder / "labelsTr" / "big00.nii.gz")
    (folder / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"}, "labels": {"background": 0, "lesion": 1},
        "numTraining": 1, "file_ending": ".nii.gz"}))
    return folder


def memory_peak(work: Path, n: int = 2, shape=(300, 512, 512), trace: bool = False,
                target_mm3: float = 1800.0) -> dict:
    """Peak RSS of a child running ``generate --workers 1`` on one big int16 case, each
    output case taken to ``target_mm3`` of lesion (about twice the case's own load, so the
    engine adds lesions: with the case's own load as the target nothing would change)."""
    data = big_case(work / "big", shape)
    out = work / "big_out"
    code = _CHILD.format(root=str(ROOT), trace=trace, data=str(data), out=str(out), n=n,
                         target=target_mm3)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    row = json.loads(res.stdout.strip().splitlines()[-1])
    f32 = int(np.prod(shape)) * 4
    row.update(shape_zyx=list(shape), n=n, float32_bytes=f32,
               peak_over_float32=(row["rss_peak_kb"] - row["rss_before_kb"]) * 1024 / f32,
               hwm_over_float32=(row["vm_hwm_kb"] - row["rss_before_kb"]) * 1024 / f32)
    return row
