"""The task: synthesise one output case, reading and writing by path.

A task receives only paths, a seed and a few numbers (a :class:`TaskSpec`); it reads its
source case, loads the lesion bank, the likelihood map and the plan from the run's
``.lesionmix/`` folder (once per worker process, then cached), synthesises
(:func:`synthesize_output`, the one function that makes output ``k`` of a run, which the
napari plugin's "Synthesise one" calls too), and writes its image, label and provenance
files, each atomically, in that order. No volume passes through the executor or the
scheduler. A task is idempotent: run twice, it writes the same bytes.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.case import Case
from ..core.image_io import set_io_threads
from ..core.io_utils import atomic_write_text, parse_json
from ..core.lesions import LesionBank
from ..core.likelihood import LikelihoodMap
from ..core.mix import SynthResult, case_seeds, synthesize
from ..core.recipe import Recipe
from .layout import output_name
from .lock import alive, process_start

__all__ = ["TaskSpec", "TaskResult", "Shared", "compute_task", "parent_identity", "run_task",
           "synthesize_one", "synthesize_output", "worker_init", "write_task",
           "limit_threads", "BANK_FILE", "MAP_FILE", "PLAN_FILE"]

BANK_FILE = "bank.npz"
MAP_FILE = "likelihood.nii.gz"
PLAN_FILE = "plan.json"
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS")


@dataclass
class Shared:
    """What every output case of a run shares: the recipe (lesion classes resolved), the
    lesion bank, the likelihood map (None: uniform placement) and the reference loads."""

    recipe: Recipe
    bank: LesionBank
    lmap: LikelihoodMap | None
    reference: list

    def seed(self, k: int, n: int) -> np.random.SeedSequence:
        """The seed stream of output ``k`` of ``n``: ``case_seeds(recipe.seed, n)[k]``."""
        return case_seeds(self.recipe.seed, n)[k]


def synthesize_output(case: Case, shared: Shared, seed: np.random.SeedSequence,
                      name: str, progress=None, in_place: bool = False) -> SynthResult:
    """Synthesise one output case from ``case`` (not modified unless ``in_place``), as a
    run does.

    Every output case of ``lesionmix generate``, of the plugin's Export and of its
    "Synthesise one" is made here, so the same source, recipe, bank, map, reference
    loads and seed give the same arrays wherever it runs. ``progress(done_ops, cap)`` is
    :func:`~napari_lesionmix.core.mix.synthesize`'s.
    """
    return synthesize(case, shared.bank, shared.lmap, shared.recipe, seed=seed,
                      reference_loads=shared.reference, name=name, progress=progress,
                      in_place=in_place)


def synthesize_one(case: Case, shared: Shared, k: int, n: int, progress=None) -> SynthResult:
    """Output ``k`` of ``n`` of ``case`` in memory: its seed stream and its name."""
    return synthesize_output(case, shared, shared.seed(k, n), output_name(case.name, k, n),
                             progress)


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
    source_images, source_label : list of str, str or None
        Absolute paths of the source case's files (read unless the case is given to
        :func:`run_task`).
    image_paths, label_path, provenance_path : list of str, str, str
        Output files.
    work_dir : str
        The run's ``.lesionmix`` folder (bank, map, plan; ``tmp/`` for temporaries).
    seed : numpy.random.SeedSequence
        ``case_seeds(recipe.seed, N)[k]``.
    compression : int or None
        zlib level for the written files (None: the default).
    limit_threads : bool
        Set native thread pools to one thread (worker processes).
    """

    k: int
    name: str
    source: str
    source_images: list
    source_label: str | None
    image_paths: list
    label_path: str
    provenance_path: str
    work_dir: str
    seed: np.random.SeedSequence
    compression: int | None = None
    limit_threads: bool = False


@dataclass
class TaskResult:
    """What a task reports back (small: numbers and strings only).

    ``unchanged`` is True when the loop accepted no operation: the written case equals
    its source voxel for voxel. ``refusal`` is the most common reason a draw was
    refused (empty when none was). ``stop`` is set (with ``error``) when OUTPUT could
    not be written (no space left, quota, I/O error): the run stops, as every further
    case would fail the same way; the case is not recorded.
    """

    k: int
    name: str
    source: str
    ok: bool
    error: str = ""
    target_load_mm3: float = 0.0
    start_load_mm3: float = 0.0
    achieved_load_mm3: float = 0.0
    achieved_voxels: int = 0
    tolerance_mm3: float = 0.0
    direction: str = ""
    synthesis: str = ""
    operations: int = 0
    refused: int = 0
    refusal: str = ""
    unchanged: bool = False
    seconds: dict = field(default_factory=dict)
    pid: int = 0
    stop: str = ""


# ------------------------------------------------------------------------------ workers
_SHARED: dict = {}
_LIMITED = False


def limit_threads() -> None:
    """Run SimpleITK, OpenCV, BLAS/OpenMP and file I/O on one thread in this process
    (idempotent).

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
    set_io_threads(1)
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


def parent_identity() -> tuple[int, int | None]:
    """This process's pid and start time: what :func:`worker_init` watches."""
    return os.getpid(), process_start(os.getpid())


def worker_init(parent_pid: int | None = None, parent_start: int | None = None) -> None:
    """Initializer of the process pool's workers: one thread each; SIGINT and SIGTERM are
    left to the parent (which stops them); and the worker ends itself within half a
    second when the parent process is gone (killed), so no orphan goes on writing cases
    that nobody records. (A forkserver's workers are its children, not the run's, and a
    pool's queues keep them waiting forever once the parent is gone: they must watch it.)
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    limit_threads()
    if parent_pid is not None:
        threading.Thread(target=_watch_parent, args=(parent_pid, parent_start),
                         name="lesionmix-parent-watch", daemon=True).start()


def _watch_parent(pid: int, start: int | None) -> None:
    while True:
        time.sleep(0.5)
        if not alive(pid) or start is not None and process_start(pid) not in (None, start):
            os._exit(1)  # its temporaries are removed by the next run's clean-up



def shared(work_dir: str | Path) -> Shared:
    """The run's recipe, bank, map and reference loads, loaded once per process.

    The cache key includes the plan file's size and modification time, so a long-lived
    worker (Dask) never uses the files of an earlier run.
    """
    work = Path(work_dir)
    st = (work / PLAN_FILE).stat()
    key = (str(work.resolve()), st.st_mtime_ns, st.st_size)
    if _SHARED.get("key") == key:
        return _SHARED["value"]
    plan = parse_json((work / PLAN_FILE).read_text(encoding="utf-8"))
    map_path = work / MAP_FILE
    value = Shared(Recipe.from_dict(plan["recipe"]), LesionBank.load(work / BANK_FILE),
                   LikelihoodMap.load(map_path) if map_path.exists() else None,
                   [float(v) for v in plan["reference_loads_mm3"]])
    _SHARED.clear()
    _SHARED.update(key=key, value=value)
    return value


# ------------------------------------------------------------------------------ the task
def run_task(spec: TaskSpec, case: Case | None = None) -> TaskResult:
    """Synthesise and write one output case (:func:`compute_task` then :func:`write_task`).

    Parameters
    ----------
    spec : TaskSpec
    case : Case, optional
        The source case in memory (an in-memory run); default: read it from
        ``spec.source_images`` / ``spec.source_label``.

    Returns
    -------
    TaskResult
        ``ok`` False with ``error`` on any exception (the run records it and goes on);
        ``KeyboardInterrupt`` propagates after the atomic writes have removed their
        temporary files.
    """
    res, out = compute_task(spec, case)
    return res if out is None else write_task(spec, res, out)


def compute_task(spec: TaskSpec, case: Case | None = None
                 ) -> tuple[TaskResult, SynthResult | None]:
    """Read the source and synthesise: the result and the case to write (None: failed)."""
    if spec.limit_threads:
        limit_threads()
    res = TaskResult(spec.k, spec.name, spec.source, ok=False, pid=os.getpid())
    try:
        t0 = time.perf_counter()
        ctx = shared(spec.work_dir)
        t1 = time.perf_counter()
        own = case is None  # read here, used by nothing else: synthesised into (no copy)
        if own:
            case = Case.read(spec.source_images, spec.source_label, name=spec.source)
        t2 = time.perf_counter()
        out = synthesize_output(case, ctx, spec.seed, spec.name, in_place=own)
        t3 = time.perf_counter()
    except Exception as exc:  # noqa: BLE001 - reported per case, the run goes on
        res.error = _error(exc)
        return res, None
    res.seconds = {"setup": t1 - t0, "read": t2 - t1, "synthesis": t3 - t2}
    return res, out


def write_task(spec: TaskSpec, res: TaskResult, out: SynthResult) -> TaskResult:
    """Write a computed case: channels, label, provenance, each atomically via
    ``.lesionmix/tmp``; ``res`` becomes the case's full result."""
    tmp = Path(spec.work_dir) / "tmp"
    try:
        t0 = time.perf_counter()
        out.case.write(spec.image_paths, spec.label_path, overwrite=True,
                       compression_level=spec.compression, tmp_dir=tmp)
        atomic_write_text(spec.provenance_path, out.provenance.to_json(), tmp_dir=tmp)
        res.seconds["write"] = time.perf_counter() - t0
    except OSError as exc:  # OUTPUT cannot be written (no space, ...): the run stops
        res.error = res.stop = str(exc)
        return res
    except Exception as exc:  # noqa: BLE001 - reported per case, the run goes on
        res.error = _error(exc)
        return res
    return describe(res, out)


def _error(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def describe(res: TaskResult, out: SynthResult) -> TaskResult:
    """Fill ``res`` with what the provenance of ``out`` says (loads, status, refusals)."""
    prov = out.provenance
    refusals = Counter(_plain(o.reason) for o in prov.operations if not o.accepted and o.reason)
    res.ok = True
    res.target_load_mm3 = float(prov.target_load_mm3)
    res.start_load_mm3 = float(prov.start_load_mm3)
    res.achieved_load_mm3 = float(prov.achieved_load_mm3)
    res.achieved_voxels = int(prov.achieved_voxels)
    res.tolerance_mm3 = float(prov.tolerance_mm3)
    res.direction = prov.direction
    res.synthesis = prov.status
    res.operations = len(prov.accepted)
    res.refused = sum(refusals.values())
    res.refusal = refusals.most_common(1)[0][0] if refusals else ""
    res.unchanged = res.operations == 0
    return res


def _plain(reason: str) -> str:
    """A refusal reason without its numbers ("only 80% inside ..." -> "only N% inside ...")."""
    return re.sub(r"\d+(\.\d+)?", "N", reason)
