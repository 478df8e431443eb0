"""The task: synthesise one output case, reading and writing by path.

A task receives only paths, a seed and a few numbers (a :class:`TaskSpec`); it reads its
source case, loads the lesion bank, the likelihood map and the plan from the run's
``.lesionmix/`` folder (once per worker process, then cached), synthesises, and writes its
image, label and provenance files, each atomically, in that order. No volume passes
through the executor or the scheduler. A task is idempotent: run twice, it writes the
same bytes.
"""

from __future__ import annotations

import json
import os
import signal
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.case import Case
from ..core.lesions import LesionBank
from ..core.likelihood import LikelihoodMap
from ..core.mix import synthesize
from ..core.recipe import Recipe

__all__ = ["TaskSpec", "TaskResult", "run_task", "worker_init", "limit_threads",
           "BANK_FILE", "MAP_FILE", "PLAN_FILE"]

BANK_FILE = "bank.npz"
MAP_FILE = "likelihood.nii.gz"
PLAN_FILE = "plan.json"
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS")


@dataclass
class TaskSpec:
    """One output case: where to read, where to write, which seed.

    Attributes
    ----------
    k : int
        Output index (0..N-1).
    name : str
        Output case name, ``<source>_lmix<NNNN>``.
    source : str
        Source case name.
    source_images, source_label : list of str, str
        Absolute paths of the source case's files.
    image_paths, label_path, provenance_path : list of str, str, str
        Output files.
    work_dir : str
        The run's ``.lesionmix`` folder (bank, map, plan).
    seed : numpy.random.SeedSequence
        ``case_seeds(recipe.seed, N)[k]``.
    compression : int or None
        zlib level for the written files (None: SimpleITK's default).
    limit_threads : bool
        Set native thread pools to one thread (worker processes).
    """

    k: int
    name: str
    source: str
    source_images: list
    source_label: str
    image_paths: list
    label_path: str
    provenance_path: str
    work_dir: str
    seed: np.random.SeedSequence
    compression: int | None = None
    limit_threads: bool = False


@dataclass
class TaskResult:
    """What a task reports back (small: numbers and strings only)."""

    k: int
    name: str
    source: str
    ok: bool
    error: str = ""
    target_load_mm3: float = 0.0
    start_load_mm3: float = 0.0
    achieved_load_mm3: float = 0.0
    achieved_voxels: int = 0
    synthesis: str = ""
    operations: int = 0
    seconds: dict = field(default_factory=dict)
    pid: int = 0


# ------------------------------------------------------------------------------ workers
_SHARED: dict = {}
_LIMITED = False


def limit_threads() -> None:
    """Run SimpleITK, OpenCV and BLAS/OpenMP on one thread in this process (idempotent).

    Worker processes each do one case at a time; several native threads per worker
    would oversubscribe the cores.
    """
    global _LIMITED
    if _LIMITED:
        return
    _LIMITED = True
    for var in _THREAD_VARS:
        os.environ.setdefault(var, "1")
    import SimpleITK as sitk
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
    try:
        import cv2
        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - opencv is a dependency
        pass
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:  # pragma: no cover - optional
        pass


def worker_init() -> None:
    """Initializer of the process pool's workers: one thread each, and Ctrl-C is left
    to the parent (which cancels pending tasks and lets running ones finish)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads()


def shared(work_dir: str | Path) -> dict:
    """The run's bank, map, recipe and reference loads, loaded once per process.

    The cache key includes the plan file's size and modification time, so a long-lived
    worker (Dask) never uses the files of an earlier run.
    """
    work = Path(work_dir)
    st = (work / PLAN_FILE).stat()
    key = (str(work.resolve()), st.st_mtime_ns, st.st_size)
    hit = _SHARED.get("key")
    if hit == key:
        return _SHARED["value"]
    plan = json.loads((work / PLAN_FILE).read_text())
    map_path = work / MAP_FILE
    value = {
        "plan": plan,
        "recipe": Recipe.from_dict(plan["recipe"]),
        "reference": [float(v) for v in plan["reference_loads_mm3"]],
        "bank": LesionBank.load(work / BANK_FILE),
        "lmap": LikelihoodMap.load(map_path) if map_path.exists() else None,
    }
    _SHARED.clear()
    _SHARED.update(key=key, value=value)
    return value


# ------------------------------------------------------------------------------ the task
def run_task(spec: TaskSpec) -> TaskResult:
    """Synthesise and write one output case.

    Returns
    -------
    TaskResult
        ``ok`` False with ``error`` on any exception (the run records it and goes on);
        ``KeyboardInterrupt`` propagates after the atomic writes have removed their
        temporary files.
    """
    if spec.limit_threads:
        limit_threads()
    res = TaskResult(spec.k, spec.name, spec.source, ok=False, pid=os.getpid())
    try:
        t0 = time.perf_counter()
        ctx = shared(spec.work_dir)
        t1 = time.perf_counter()
        case = Case.read(spec.source_images, spec.source_label, name=spec.source)
        t2 = time.perf_counter()
        out = synthesize(case, ctx["bank"], ctx["lmap"], ctx["recipe"], seed=spec.seed,
                         reference_loads=ctx["reference"], name=spec.name)
        t3 = time.perf_counter()
        out.case.write(spec.image_paths, spec.label_path, overwrite=True,
                       compression_level=spec.compression, tmp_dir=Path(spec.work_dir) / "tmp")
        out.provenance.to_json(spec.provenance_path, overwrite=True)
        t4 = time.perf_counter()
    except Exception as exc:  # noqa: BLE001 - reported per case, the run goes on
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
        res.error = f"{type(exc).__name__}: {exc}{where}"
        return res
    prov = out.provenance
    res.ok = True
    res.target_load_mm3 = float(prov.target_load_mm3)
    res.start_load_mm3 = float(prov.start_load_mm3)
    res.achieved_load_mm3 = float(prov.achieved_load_mm3)
    res.achieved_voxels = int(prov.achieved_voxels)
    res.synthesis = prov.status
    res.operations = len(prov.accepted)
    res.seconds = {"setup": t1 - t0, "read": t2 - t1, "synthesis": t3 - t2, "write": t4 - t3}
    return res
