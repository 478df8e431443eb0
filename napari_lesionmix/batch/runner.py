"""The one run: from a source of cases to a trainable nnU-Net v2 raw dataset.

``lesionmix generate`` and the napari plugin's Export both call :func:`generate` with
:class:`~.options.GenerateOptions` (what it returns: :class:`~.options.RunSummary`); the
source is a dataset on disk (:class:`~napari_lesionmix.batch.dataset.Dataset`) or cases
in memory (:class:`~napari_lesionmix.batch.memory.MemorySource`). Its steps, in order,
each a function of this module:

1. :func:`check_output`: OUTPUT must be empty or absent, unless ``resume`` or
   ``overwrite``; nothing is written.
2. :func:`read_input`: read and validate **every** input case (one pass; the lesion
   bank, the likelihood map and the reference loads are built in the same pass). Bad
   cases are reported by name; without ``skip_bad`` the run stops here, having written
   nothing.
3. :func:`make_plan`: output ``k`` (0..N-1) takes source case ``k mod n_sources``
   (sources sorted by name) and the seed stream ``case_seeds(recipe.seed, N)[k]``;
   results therefore do not depend on the number of workers or the executor. With
   ``resume`` the plan must match the previous run's or the run refuses.
4. :func:`write_shared`: ``overwrite`` removes what the previous run recorded writing
   (see ``OutputLayout.remove_run``); the bank, the map (with its alignment, ``likelihood.align.npz``)
   and the plan go to ``OUTPUT/.lesionmix/``; the
   manifest is started; the originals are copied.
5. :func:`~.finish.cleanup`: leftover temporary files and the files of cases that are not
   complete are deleted, so what follows starts from complete cases only.
6. :func:`run_tasks`: one task per missing case on the chosen executor; each finished
   case gets its manifest entry (the last thing written for a case). A Ctrl-C, or the
   caller's ``abort`` flag, stops after the cases in progress.
7. :func:`~.finish.finish`: clean-up, dataset.json (numTraining = complete cases), the grouped
   ``splits_final.json``, loads.png, the manifest's final state, and what the run could
   not do, said per case and, when cases equal their sources, with the likely cause.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import closing, contextmanager
from pathlib import Path

from ..core.align import align_path
from ..core.io_utils import atomic_path, atomic_write_text, split_ext
from ..core.mix import case_seeds
from ..core.recipe import Recipe, RecipeError
from .cluster import connect_scheduler
from .dataset import DatasetError, open_dataset
from .executors import describe_executor, execute
from .finish import cleanup, finish
from .layout import OutputLayout, output_name, reserve_bytes
from .lock import OutputLock
from .manifest import Manifest, file_sizes, package_versions
from .memory import MemorySource
from .options import GenerateOptions, Plan, RunError, RunSummary, check_options, load_recipe
from .prepare import Setup, prepare
from .progress import Progress
from .report import organ_like_classes
from .signals import (
    Interrupt,
    Terminated,
    deferred_signals,
    signal_handlers,
    terminate_raises,
)
from .tasks import BANK_FILE, MAP_FILE, PLAN_FILE, TaskResult, TaskSpec

__all__ = ["check_output", "generate", "make_plan", "open_source", "output_folder", "read_input",
           "run_tasks", "write_shared"]


def check_output(output, source, resume: bool = False,
                 overwrite: bool = False) -> tuple[Path, Manifest | None]:
    """Check that ``output`` can receive the run, creating nothing.

    Returns
    -------
    (folder, manifest) : Path, Manifest or None
        The absolute output folder; the previous run's manifest when resuming one.

    Raises
    ------
    RunError
        OUTPUT is the input or inside its case folders, a file, not writable, or holds
        files without ``resume``/``overwrite``; nothing to resume.
    """
    out = output_folder(output, source)
    probe = OutputLayout(out)
    if not probe.has_files():
        return out, None
    if not (resume or overwrite):
        raise RunError(f"{out}: already holds files; finish that run (--resume) or replace it "
                       "(--overwrite), or choose an empty or new folder")
    flag = "--resume" if resume else "--overwrite"
    if not probe.manifest.exists():
        raise RunError(f"{out}: holds files but no manifest.json, so it is not a lesionmix "
                       f"run: {flag} only works on one (nothing was deleted); choose another "
                       "OUTPUT")
    try:
        previous = Manifest.load(probe.manifest)
    except ValueError as exc:
        raise RunError(f"{exc}; {flag} needs a lesionmix manifest (nothing was deleted)") from None
    foreign = probe.foreign_files(previous.data)
    if foreign:
        shown = ", ".join(str(p) for p in foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise RunError(f"{out}: holds files not written by the lesionmix run recorded in "
                       f"{probe.manifest}: {shown}; move them away (nothing was deleted)")
    return out, (previous if resume else None)


def output_folder(output, source) -> Path:
    """The absolute OUTPUT folder, checked as a place to write (nothing is created).

    Raises
    ------
    RunError
        OUTPUT is the input or inside its case folders, a file, or cannot be written.
    """
    if not str(output).strip():
        raise RunError("choose an output folder")
    out = Path(output).expanduser().absolute()
    inp = getattr(source, "root", None)
    if inp is not None:
        inp, out = Path(inp).resolve(), out.resolve()
        if out == inp or out in inp.parents:
            raise RunError(f"{out}: OUTPUT must not be the input folder or contain it")
        if inp in out.parents:
            top = out.relative_to(inp).parts[0]
            if top in ("imagesTr", "labelsTr", "images", "labels"):
                raise RunError(f"{out}: OUTPUT must not lie inside the input's {top}/ folder")
    if out.exists() and not out.is_dir():
        raise RunError(f"{out}: is a file, not a folder")
    ancestor = out
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RunError(f"{out}: cannot be created: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RunError(f"{out}: cannot be written: no write permission on {ancestor}")
    return out


# ------------------------------------------------------------------------------ 2. input
def open_source(what):
    """A dataset folder opened as a :class:`Dataset`, or a :class:`MemorySource` as is."""
    if isinstance(what, MemorySource):
        return what
    try:
        return open_dataset(what)
    except DatasetError as exc:
        raise RunError(str(exc)) from None


def read_input(source, recipe: Recipe, skip_bad: bool = False,
               say: Callable[[str], None] = print, progress: bool = True) -> Setup:
    """Read and check every case; build the bank, the map and the reference loads.

    Raises
    ------
    RunError
        Bad cases without ``skip_bad``, no valid case, a recipe the dataset contradicts.
    """
    say(f"reading and checking {len(source.cases)} input case(s) in {source.describe()}")
    bar = Progress(len(source.cases), "checking", enabled=progress)
    try:
        setup = prepare(source, recipe, progress=bar.update_to)
    except RecipeError as exc:
        raise RunError(f"recipe: {exc}") from None
    finally:
        bar.close()
    for b in setup.bad:
        say(f"bad case {b.name}: {b.problem}")
    for line in setup.notices:
        say(f"likelihood map: {line}")
    if setup.bad and not skip_bad:
        raise RunError(f"{len(setup.bad)} bad input case(s): "
                       f"{', '.join(b.name for b in setup.bad)}; nothing was written (fix them, "
                       "or pass --skip-bad to go on without them)")
    if not setup.good:
        raise RunError(f"{source.describe()}: no valid case left")
    if setup.recipe.organ_label is None:
        for name, value in organ_like_classes(source.labels, setup.recipe.lesion_classes):
            say(f"note: label {value} ({name!r}) is counted as a lesion class because no "
                f"organ_label is set; for an organ dataset set \"organ_label\": {value} in "
                "the recipe")
    kept = {split_ext(p.name)[1].lower() for s in setup.good for p in s.files()}
    other = sorted(kept - {source.file_ending.lower()})
    if other and getattr(source, "file_ending", None):
        say(f"note: the input's {', '.join(other)} files are written as {source.file_ending} "
            "(the format nnU-Net v2 reads that keeps every voxel and the geometry)")
    if setup.bank is None or len(setup.bank) == 0:
        say(f"note: no lesion of classes {setup.recipe.lesion_classes} with at least "
            f"{setup.recipe.min_voxels} voxels in any case: the lesion bank is empty, so a "
            "case whose target needs lesions added will fail (and say so)")
    return setup


# ------------------------------------------------------------------------------ 3. plan
def make_plan(source, setup: Setup, opts: GenerateOptions, layout: OutputLayout,
              previous: Manifest | None = None) -> Plan:
    """Output names, sources and seed streams; checked against the run being resumed."""
    recipe = setup.recipe
    data = {
        "input": source.describe(),
        "input_layout": source.layout,
        "input_fingerprint": source.fingerprint(),
        "sources": [s.name for s in setup.good],
        "skipped": [b.name for b in setup.bad],
        "n": int(opts.n),
        "seed": int(recipe.seed),
        "recipe_hash": recipe.hash(),
        "file_ending": layout.file_ending,
        "originals": bool(opts.originals),
        "compression": opts.compression,
    }
    if previous is not None and previous.data.get("removed"):
        raise RunError(f"{layout.manifest}: cannot resume: {len(previous.data['removed'])} "
                       "case(s) were removed from this output after review (lesionmix "
                       "remove-rejected) and resuming would make them again; write a new "
                       "OUTPUT, or use --overwrite to start again")
    if previous is not None:
        old = previous.data.get("plan", {})
        diff = [f"{k}: previous {old.get(k)!r}, now {data.get(k)!r}"
                for k in data if old.get(k) != data.get(k)]
        if diff:
            raise RunError(f"{layout.manifest}: cannot resume: the plan differs from the "
                           "previous run's (" + "; ".join(diff) + "); use --overwrite to "
                           "start again")
    sources = [setup.good[k % len(setup.good)] for k in range(opts.n)]
    names = [output_name(s.name, k, opts.n) for k, s in enumerate(sources)]
    clash = {s.name for s in setup.good} & set(names)
    if clash:
        raise RunError(f"output names {sorted(clash)} clash with input case names")
    return Plan(names, sources, case_seeds(recipe.seed, opts.n), data)


# ------------------------------------------------------------------------------ 4. shared files
def write_shared(source, setup: Setup, plan: Plan, layout: OutputLayout,
                 opts: GenerateOptions, previous: Manifest | None,
                 say: Callable[[str], None] = print) -> Manifest:
    """Remove a previous run (``overwrite``), write the bank, the map, the plan and the
    manifest, and copy the originals. The first step that writes."""
    if opts.overwrite and layout.has_files():  # check_output vouched for every file
        removed = layout.remove_run(Manifest.load(layout.manifest).data)
        if removed:
            say(f"--overwrite: removed the previous run's {', '.join(removed)} from "
                f"{layout.root}")
    layout.make_folders()
    # the manifest first: from here on OUTPUT is recognisably a run that --resume finishes
    if previous is not None:
        manifest = Manifest(layout.manifest, previous.data, layout.tmp)
        manifest.data["state"] = "running"
        manifest.data["versions"] = package_versions()
    else:
        manifest = Manifest.new(layout.manifest, layout.tmp, plan=plan.data,
                                recipe=setup.recipe.to_dict(), versions=package_versions(),
                                cases={})
    manifest.save()
    layout.make_reserve(reserve_bytes(opts.n + len(setup.good)))
    with atomic_path(layout.work / BANK_FILE, tmp_dir=layout.tmp) as tmp:
        setup.bank.save(tmp)
    if setup.lmap is not None:  # the map and, when it has one, its alignment for workers
        setup.lmap.save(layout.work / MAP_FILE, overwrite=True, tmp_dir=layout.tmp)
    else:
        (layout.work / MAP_FILE).unlink(missing_ok=True)
        align_path(layout.work / MAP_FILE).unlink(missing_ok=True)
    reference = setup.reference_loads()
    atomic_write_text(layout.work / PLAN_FILE, json.dumps(
        {"plan": plan.data, "recipe": setup.recipe.to_dict(), "reference_loads_mm3": reference},
        indent=1), tmp_dir=layout.tmp)
    manifest.data["skipped"] = [b.to_dict() for b in setup.bad]
    manifest.data["likelihood_notices"] = list(setup.notices)
    manifest.data["reference_loads"] = {s.name: setup.loads[s.name] for s in setup.good}
    manifest.data["reference_loads_mm3"] = reference
    manifest.data["labels"] = dict(source.labels or {})
    manifest.data["executor"] = _executor(source, opts)
    manifest.save()
    if opts.originals:
        originals = {}
        for s in setup.good:
            files = source.write_original(s, layout, opts.compression)
            originals[s.name] = {"files": [layout.rel(p) for p in files],
                                 "sizes": file_sizes(files)}
        manifest.data["originals"] = originals
        manifest.save()
    return manifest


def _executor(source, opts: GenerateOptions) -> str:
    if isinstance(source, MemorySource):
        return "this process (cases in memory)"
    return describe_executor(1 if opts.scheduler else opts.workers, opts.scheduler)


# ------------------------------------------------------------------------------ 6. tasks
def _specs(plan: Plan, layout: OutputLayout, complete: set, compression) -> list[TaskSpec]:
    specs = []
    for k, (name, src) in enumerate(zip(plan.names, plan.sources)):
        if name in complete:
            continue
        specs.append(TaskSpec(
            k=k, name=name, source=src.name,
            source_images=[str(p) for p in src.image_paths],
            source_label=None if src.label_path is None else str(src.label_path),
            image_paths=[str(p) for p in layout.image_paths(name)],
            label_path=str(layout.label_path(name)),
            provenance_path=str(layout.provenance_path(name)),
            work_dir=str(layout.work), seed=plan.seeds[k], compression=compression))
    return specs


def run_tasks(source, plan: Plan, layout: OutputLayout, manifest: Manifest,
              opts: GenerateOptions, summary: RunSummary, say: Callable[[str], None] = print,
              abort=None, on_result: Callable[[TaskResult], None] | None = None,
              progress: Callable[[int, int], None] | None = None,
              check: Callable[[], str] | None = None, client=None) -> None:
    """Run every case that is not complete; record each as it finishes.

    ``abort`` (a callable or a ``threading.Event``) is polled between cases; Ctrl-C is
    handled as :mod:`.executors` describes. Either way the cases in progress finish (or
    are cleaned up by :func:`finish`). ``check()`` (e.g. the OUTPUT lock's) returns why
    the run must stop, "" while it may go on; once it says so nothing more is recorded.
    ``client``: the Dask client of ``opts.scheduler``, connected already.
    """
    complete = set(manifest.written())
    specs = _specs(plan, layout, complete, opts.compression)
    memory = source.case if isinstance(source, MemorySource) else None
    workers = 1 if (opts.scheduler or memory is not None) else opts.workers
    say(f"synthesising {len(specs)} case(s) ({summary.reused} already complete) on "
        f"{_executor(source, opts)}")
    interrupt = Interrupt(immediate=(workers <= 1 and not opts.scheduler),
                          notify=lambda m: say("\n" + m), abort=abort, check=check)
    bar = Progress(opts.n, "synthesising", initial=summary.reused, enabled=opts.progress)
    done = summary.reused
    if progress is not None:
        progress(done, opts.n)
    try:
        with signal_handlers(interrupt), closing(execute(
                specs, workers, None if memory else (client or opts.scheduler), interrupt,
                memory)) as results:
            for res in results:
                if check is not None and check():
                    _stop(summary, interrupt, check(), say)
                    continue  # OUTPUT is another run's now: record nothing more
                if res.stop or summary.stopped:
                    _stop(summary, interrupt, res.stop or summary.stopped, say)
                    continue  # not recorded: the clean-up removes what it wrote
                try:
                    _record(manifest, layout, res)
                except OSError as exc:  # the manifest cannot be written: stop
                    _stop(summary, interrupt, str(exc), say)
                    continue
                if res.ok:
                    summary.written += 1
                else:
                    summary.failed.append({"case": res.name, "error": res.error})
                    say(f"\nfailed {res.name} (source {res.source}): {res.error}")
                bar.update(1)
                done += 1
                if progress is not None:
                    progress(done, opts.n)
                if on_result is not None:
                    on_result(res)
    except KeyboardInterrupt as exc:  # Ctrl-C (twice with a pool) or SIGTERM: stop now
        summary.interrupted = True
        summary.terminated = summary.terminated or isinstance(exc, Terminated)
    finally:
        bar.close()
        summary.interrupted = summary.interrupted or interrupt.by_user
        summary.terminated = summary.terminated or interrupt.terminated
        if interrupt.reason and not summary.stopped:
            summary.stopped = interrupt.reason
            say(f"\nstopped: {interrupt.reason}")


def _stop(summary: RunSummary, interrupt: Interrupt, why: str, say) -> None:
    """OUTPUT cannot be written: submit nothing more, let the running cases end."""
    if summary.stopped:
        return
    summary.stopped = why
    interrupt.halt()
    say(f"\nstopped: {why}")


def _record(manifest: Manifest, layout: OutputLayout, res: TaskResult) -> None:
    if res.ok:
        files = layout.case_files(res.name)
        entry = {"k": res.k, "source": res.source, "status": "written",
                 "target_load_mm3": res.target_load_mm3, "start_load_mm3": res.start_load_mm3,
                 "achieved_load_mm3": res.achieved_load_mm3,
                 "achieved_voxels": res.achieved_voxels, "tolerance_mm3": res.tolerance_mm3,
                 "direction": res.direction, "synthesis": res.synthesis,
                 "operations": res.operations, "refused": res.refused,
                 "refusal": res.refusal, "unchanged": res.unchanged,
                 "seconds": res.seconds, "worker_pid": res.pid,
                 "files": [layout.rel(p) for p in files], "sizes": file_sizes(files)}
    else:
        entry = {"k": res.k, "source": res.source, "status": "failed", "error": res.error}
    manifest.record(res.name, entry)


# ------------------------------------------------------------------------------ the run
def generate(opts: GenerateOptions, say: Callable[[str], None] | None = None, *,
             abort=None, on_result: Callable[[TaskResult], None] | None = None,
             progress: Callable[[int, int], None] | None = None) -> RunSummary:
    """Run ``lesionmix generate`` (or the plugin's Export): steps 1 to 7 above.

    Parameters
    ----------
    opts : GenerateOptions
    say : callable(str), optional
        Where messages go (default: stderr).
    abort : callable() -> bool or threading.Event, optional
        Polled between cases: true stops after the case in progress, leaving only
        complete cases and a manifest that lists exactly them (state ``interrupted``).
    on_result : callable(TaskResult), optional
        Called after each case is recorded.
    progress : callable(done, total), optional
        Cases complete out of N (called at the start and after each case).

    Returns
    -------
    RunSummary
        Its ``exit_code`` is 0 only if every planned case is complete.

    Raises
    ------
    RunError
        Nothing could be run: bad options, bad input cases (without ``skip_bad``), OUTPUT
        holding files without ``resume``/``overwrite``, a plan that differs from the run
        being resumed. Nothing has been written or deleted.
    """
    say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
    check_options(opts)
    source = open_source(opts.input)
    out = output_folder(opts.output, source)
    with terminate_raises(), _cluster(opts, source) as client:  # SIGTERM: Terminated
        lock = OutputLock(out)
        lock.acquire()  # a second run on the same OUTPUT refuses here, before any reading
        try:
            return _generate(opts, source, lock, say, abort, on_result, progress, client)
        finally:
            lock.release()
            lock.discard_root()  # a run refused before writing leaves no folder it made


@contextmanager
def _cluster(opts: GenerateOptions, source):
    """The Dask client of ``--scheduler``, connected before anything is read or written
    (None without one)."""
    if not opts.scheduler or isinstance(source, MemorySource):
        yield None
        return
    client = connect_scheduler(opts.scheduler)
    try:
        yield client
    finally:
        client.close()


def _generate(opts, source, lock, say, abort, on_result, progress, client) -> RunSummary:
    t_start = time.perf_counter()
    out, previous = check_output(opts.output, source, opts.resume, opts.overwrite)
    recipe = load_recipe(opts.recipe, opts.seed)
    setup = read_input(source, recipe, opts.skip_bad, say, opts.progress)
    layout = OutputLayout(out, source.file_ending, source.n_channels)
    plan = make_plan(source, setup, opts, layout, previous)
    manifest = write_shared(source, setup, plan, layout, opts, previous, say)
    # the tasks read the map from its file: this copy (and its alignment reference) would
    # only add its size to the run's peak memory
    setup.lmap = None
    summary = RunSummary(planned=opts.n, skipped=[b.to_dict() for b in setup.bad], output=out,
                         originals=len(manifest.data.get("originals", {})),
                         setup_seconds=setup.seconds.get("total", 0.0))
    cleaned = cleanup(layout, manifest, plan.names, keep={s.name for s in setup.good})
    if cleaned:
        say(f"removed {cleaned} leftover file(s) of unfinished cases")
    written = manifest.written()
    summary.reused = sum(1 for n in plan.names if n in written)
    t_run = time.perf_counter()
    try:
        run_tasks(source, plan, layout, manifest, opts, summary, say, abort, on_result,
                  progress, check=lock.check, client=client)
    finally:
        summary.seconds = time.perf_counter() - t_run
        if not lock.lost:  # else OUTPUT is another run's: write nothing more
            with deferred_signals():  # the last writes are not cut in half
                finish(source, setup, plan, layout, manifest, summary, say)
        manifest.close()
    if summary.written == 0:
        summary.seconds = time.perf_counter() - t_start
    return summary

