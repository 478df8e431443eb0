"""``lesionmix generate``: the whole run, from the input dataset to a trainable output.

Steps, in order:

1. Check OUTPUT: it must be empty or absent, unless ``resume`` or ``overwrite``.
2. Read and validate **every** input case (one pass; the lesion bank, the likelihood map
   and the reference loads are built in the same pass). Bad cases are reported by name;
   without ``skip_bad`` the run stops here, having written nothing.
3. The plan: output ``k`` (0..N-1) takes source case ``k mod n_sources`` (sources sorted
   by name) and the seed stream ``case_seeds(recipe.seed, N)[k]``; results therefore do
   not depend on the number of workers or the executor. With ``resume`` the plan must
   match the previous run's (input, recipe hash, seed, N, options) or the run refuses.
4. ``overwrite`` removes what a previous run made (see ``export.OWNED``); the bank, the
   map and the plan go to ``OUTPUT/.lesionmix/``; the originals are copied.
5. Clean-up: leftover temporary files and the files of cases that are not complete are
   deleted, so what follows starts from complete cases only.
6. One task per missing case on the chosen executor; each finished case gets its
   manifest entry (the last thing written for a case).
7. dataset.json (numTraining = complete cases), loads.png, the manifest's final state.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from ..core.io_utils import atomic_write_text
from ..core.mix import case_seeds
from ..core.recipe import Recipe, RecipeError
from .dataset import DatasetError, open_dataset
from .executors import Interrupt, describe_executor, execute, sigint_handler
from .export import (
    LMIX_PATTERN,
    Manifest,
    OutputLayout,
    copy_original,
    file_sizes,
    output_name,
    package_versions,
    write_dataset_json,
)
from .prepare import prepare
from .progress import Progress
from .tasks import BANK_FILE, MAP_FILE, PLAN_FILE, TaskResult, TaskSpec

__all__ = ["GenerateOptions", "RunSummary", "RunError", "generate"]

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class RunError(Exception):
    """The run cannot start (bad input, bad options, OUTPUT in the way). Exit code 2."""


@dataclass
class GenerateOptions:
    """Options of ``lesionmix generate`` (see the command's ``--help``)."""

    input: Path
    output: Path
    n: int
    recipe: Path | None = None
    seed: int | None = None
    workers: int = 1
    scheduler: str | None = None
    resume: bool = False
    overwrite: bool = False
    originals: bool = True
    compression: int | None = None
    skip_bad: bool = False
    progress: bool = True


@dataclass
class RunSummary:
    """How the run ended."""

    planned: int = 0
    written: int = 0
    reused: int = 0
    failed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    originals: int = 0
    interrupted: bool = False
    seconds: float = 0.0
    output: Path | None = None

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if self.written + self.reused == self.planned and not self.failed \
            else EXIT_FAILED

    def line(self) -> str:
        done = self.written + self.reused
        parts = [f"{done}/{self.planned} synthesised cases complete"]
        if self.reused:
            parts.append(f"{self.reused} from the previous run")
        if self.originals:
            parts.append(f"{self.originals} originals")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.skipped:
            parts.append(f"{len(self.skipped)} bad input case(s) skipped: "
                         + ", ".join(b["case"] for b in self.skipped))
        rate = self.written / self.seconds if self.seconds > 0 else 0.0
        parts.append(f"{self.seconds:.1f} s ({rate:.2f} cases/s)")
        state = "interrupted" if self.interrupted else ("done" if self.exit_code == 0
                                                        else "incomplete")
        return f"{state}: " + ", ".join(parts) + f" -> {self.output}"


def load_recipe(path: Path | None, seed: int | None) -> Recipe:
    """The recipe file (or the defaults), with the seed overridden if given."""
    try:
        recipe = Recipe.from_json(path) if path is not None else Recipe()
        if seed is not None:
            recipe = recipe.replace(seed=int(seed))
    except RecipeError as exc:
        raise RunError(f"recipe: {exc}") from None
    return recipe


def _check_paths(inp: Path, out: Path) -> None:
    if out == inp or out in inp.parents:
        raise RunError(f"{out}: OUTPUT must not be the input folder or contain it")
    if inp in out.parents:
        top = out.relative_to(inp).parts[0]
        if top in ("imagesTr", "labelsTr", "images", "labels"):
            raise RunError(f"{out}: OUTPUT must not lie inside the input's {top}/ folder")


def _plan(opts: GenerateOptions, dataset, prep, recipe: Recipe, layout: OutputLayout) -> dict:
    return {
        "input": str(dataset.root),
        "input_layout": dataset.layout,
        "input_fingerprint": dataset.fingerprint(),
        "sources": [s.name for s in prep.good],
        "skipped": [b.name for b in prep.bad],
        "n": int(opts.n),
        "seed": int(recipe.seed),
        "recipe_hash": recipe.hash(),
        "file_ending": layout.file_ending,
        "originals": bool(opts.originals),
        "compression": opts.compression,
    }


def _plan_differences(old: dict, new: dict) -> list[str]:
    return [f"{k}: previous {old.get(k)!r}, now {new.get(k)!r}"
            for k in new if old.get(k) != new.get(k)]


def generate(opts: GenerateOptions, say: Callable[[str], None] | None = None) -> RunSummary:
    """Run ``lesionmix generate``.

    Parameters
    ----------
    opts : GenerateOptions
    say : callable(str), optional
        Where messages go (default: stderr).

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
    t_start = time.perf_counter()
    if opts.n < 1:
        raise RunError(f"--n must be at least 1, got {opts.n}")
    if opts.resume and opts.overwrite:
        raise RunError("--resume and --overwrite exclude each other")
    if opts.compression is not None and not 1 <= opts.compression <= 9:
        raise RunError(f"--compression must be 1..9, got {opts.compression}")
    if opts.workers < 1:
        raise RunError(f"--workers must be at least 1, got {opts.workers}")
    inp = Path(opts.input).expanduser().resolve()
    out = Path(opts.output).expanduser().resolve()
    _check_paths(inp, out)
    recipe = load_recipe(opts.recipe, opts.seed)

    probe = OutputLayout(out)
    if probe.has_files() and not (opts.resume or opts.overwrite):
        raise RunError(f"{out}: already holds files; use --resume to finish that run or "
                       "--overwrite to replace it")
    old_manifest = None
    if opts.resume and probe.has_files():
        if not probe.manifest.exists():
            raise RunError(f"{out}: holds files but no manifest.json, so it is not a "
                           "lesionmix run that can be resumed; use --overwrite or another OUTPUT")
        try:
            old_manifest = Manifest.load(probe.manifest)
        except ValueError as exc:
            raise RunError(str(exc)) from None

    # ---- 2. read and validate every case (nothing written yet)
    try:
        dataset = open_dataset(inp)
    except DatasetError as exc:
        raise RunError(str(exc)) from None
    say(f"reading and checking {len(dataset.cases)} input case(s) in {inp}")
    bar = Progress(len(dataset.cases), "checking", enabled=opts.progress)
    try:
        prep = prepare(dataset, recipe, progress=bar.update_to)
    except RecipeError as exc:
        raise RunError(f"recipe: {exc}") from None
    finally:
        bar.close()
    for b in prep.bad:
        say(f"bad case {b.name}: {b.problem}")
    for line in prep.notices:
        say(f"likelihood map: {line}")
    if prep.bad and not opts.skip_bad:
        raise RunError(f"{len(prep.bad)} bad input case(s): "
                       f"{', '.join(b.name for b in prep.bad)}; nothing was written (fix them, "
                       "or pass --skip-bad to go on without them)")
    if not prep.good:
        raise RunError(f"{inp}: no valid case left")
    recipe = prep.recipe
    if len(prep.bank) == 0:
        raise RunError(f"{inp}: no lesion of classes {recipe.lesion_classes} with at least "
                       f"{recipe.min_voxels} voxels in any case; nothing to populate with")

    layout = OutputLayout(out, dataset.file_ending, dataset.n_channels)
    plan = _plan(opts, dataset, prep, recipe, layout)
    if old_manifest is not None:
        diff = _plan_differences(old_manifest.data.get("plan", {}), plan)
        if diff:
            raise RunError(f"{layout.manifest}: cannot resume: the plan differs from the previous "
                           "run's (" + "; ".join(diff) + "); use --overwrite to start again")

    # ---- 3. the plan per case
    sources = prep.good
    seeds = case_seeds(recipe.seed, opts.n)
    names = [output_name(sources[k % len(sources)].name, k, opts.n) for k in range(opts.n)]
    original_names = {s.name for s in sources}
    clash = original_names & set(names)
    if clash:
        raise RunError(f"output names {sorted(clash)} clash with input case names")

    # ---- 4. write: shared files, manifest, originals
    if opts.overwrite and probe.has_files():
        removed = layout.remove_owned()
        if removed:
            say(f"--overwrite: removed {', '.join(removed)} from {out}")
    for d in (layout.images, layout.labels, layout.provenance, layout.work):
        d.mkdir(parents=True, exist_ok=True)
    prep.bank.save(layout.work / BANK_FILE)
    if prep.lmap is not None:
        prep.lmap.save(layout.work / MAP_FILE, overwrite=True)
    else:
        (layout.work / MAP_FILE).unlink(missing_ok=True)
    reference = prep.reference_loads()
    atomic_write_text(layout.work / PLAN_FILE, json.dumps(
        {"plan": plan, "recipe": recipe.to_dict(), "reference_loads_mm3": reference}, indent=1))

    if old_manifest is not None:
        manifest = Manifest(layout.manifest, old_manifest.data)
        manifest.data["state"] = "running"
        manifest.data["versions"] = package_versions()
    else:
        manifest = Manifest.new(layout.manifest, plan=plan, recipe=recipe.to_dict(),
                                versions=package_versions(), cases={})
    manifest.data["skipped"] = [b.to_dict() for b in prep.bad]
    manifest.data["likelihood_notices"] = list(prep.notices)
    manifest.data["reference_loads"] = {s.name: prep.loads[s.name] for s in sources}
    manifest.data["executor"] = describe_executor(opts.workers, opts.scheduler)
    manifest.save()

    summary = RunSummary(planned=opts.n, skipped=[b.to_dict() for b in prep.bad], output=out)
    if opts.originals:
        originals = {}
        for s in sources:
            files = copy_original(dataset, s, layout, opts.compression)
            originals[s.name] = {"files": [layout.rel(p) for p in files],
                                 "sizes": file_sizes(files)}
        manifest.data["originals"] = originals
        manifest.save()
        summary.originals = len(originals)

    # ---- 5. clean-up: temporaries and incomplete cases
    cleaned = cleanup(layout, manifest, names, keep=original_names)
    if cleaned:
        say(f"removed {cleaned} leftover file(s) of unfinished cases")
    complete = set(manifest.written())
    summary.reused = sum(1 for n in names if n in complete)

    # ---- 6. run the missing cases
    specs = []
    for k, name in enumerate(names):
        if name in complete:
            continue
        src = sources[k % len(sources)]
        specs.append(TaskSpec(
            k=k, name=name, source=src.name,
            source_images=[str(p) for p in src.image_paths], source_label=str(src.label_path),
            image_paths=[str(p) for p in layout.image_paths(name)],
            label_path=str(layout.label_path(name)),
            provenance_path=str(layout.provenance_path(name)),
            work_dir=str(layout.work), seed=seeds[k], compression=opts.compression))
    workers = 1 if opts.scheduler else opts.workers
    say(f"synthesising {len(specs)} case(s) ({summary.reused} already complete) on "
        f"{describe_executor(workers, opts.scheduler)}")
    interrupt = Interrupt(immediate=(workers <= 1 and not opts.scheduler),
                          notify=lambda m: say("\n" + m))
    bar = Progress(opts.n, "synthesising", initial=summary.reused, enabled=opts.progress)
    t_run = time.perf_counter()
    try:
        with sigint_handler(interrupt), closing(
                execute(specs, opts.workers, opts.scheduler, interrupt)) as results:
            for res in results:
                _record(manifest, layout, res)
                if res.ok:
                    summary.written += 1
                else:
                    summary.failed.append({"case": res.name, "error": res.error})
                    say(f"\nfailed {res.name} (source {res.source}): {res.error}")
                bar.update(1)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        summary.interrupted = summary.interrupted or interrupt.requested
        summary.seconds = time.perf_counter() - t_run
        # ---- 7. consistent end state, whatever happened
        _finish(dataset, layout, manifest, names, summary, reference)
    summary.seconds = time.perf_counter() - t_start if not specs else summary.seconds
    return summary


def _record(manifest: Manifest, layout: OutputLayout, res: TaskResult) -> None:
    if res.ok:
        files = layout.case_files(res.name)
        entry = {"k": res.k, "source": res.source, "status": "written",
                 "target_load_mm3": res.target_load_mm3, "start_load_mm3": res.start_load_mm3,
                 "achieved_load_mm3": res.achieved_load_mm3,
                 "achieved_voxels": res.achieved_voxels, "synthesis": res.synthesis,
                 "operations": res.operations, "seconds": res.seconds, "worker_pid": res.pid,
                 "files": [layout.rel(p) for p in files], "sizes": file_sizes(files)}
    else:
        entry = {"k": res.k, "source": res.source, "status": "failed", "error": res.error}
    manifest.record(res.name, entry)


def cleanup(layout: OutputLayout, manifest: Manifest, names: list[str],
            keep: set | frozenset = frozenset()) -> int:
    """Delete temporaries and the files of every planned case that is not complete.

    A case is complete when its manifest entry says ``written`` and each of its files
    exists with the recorded size; otherwise its entry is dropped and its files deleted.
    Synthesised-looking files (``*_lmix*``) of cases outside the plan are deleted too.

    Returns
    -------
    int
        Files deleted.
    """
    removed = layout.remove_temporaries()
    planned = set(names)
    changed = False
    for name in names:
        entry = manifest.cases.get(name)
        files = layout.case_files(name)
        ok = entry is not None and entry.get("status") == "written" and all(
            p.exists() for p in files)
        if ok and entry.get("sizes"):
            ok = file_sizes(files) == entry["sizes"]
        if ok:
            continue
        if entry is not None and entry.get("status") == "written":
            del manifest.cases[name]
            changed = True
        for p in files:
            if p.exists():
                p.unlink()
                removed += 1
    for folder in (layout.images, layout.labels, layout.provenance):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            name = _case_of(layout, folder, p.name)
            if name and LMIX_PATTERN.search(name) and name not in planned and name not in keep:
                p.unlink()
                removed += 1
    if changed:
        manifest.save()
    return removed


def _case_of(layout: OutputLayout, folder: Path, filename: str) -> str | None:
    """The case a file of imagesTr/labelsTr/provenance belongs to (None: not ours)."""
    ending = ".json" if folder == layout.provenance else layout.file_ending
    if filename.startswith(".") or not filename.endswith(ending):
        return None
    stem = filename[: -len(ending)]
    if folder == layout.images:
        base, _, channel = stem.rpartition("_")
        return base if len(channel) == 4 and channel.isdigit() else None
    return stem


def _finish(dataset, layout, manifest, names, summary, reference) -> None:
    """Clean-up, dataset.json, loads.png and the manifest's final state."""
    cleanup(layout, manifest, names, keep=set(manifest.data.get("originals", {})))
    written = manifest.written()
    n_orig = len(manifest.data.get("originals", {}))
    write_dataset_json(dataset, layout, n_orig + sum(1 for n in names if n in written),
                       description="LesionMix augmented dataset (napari-lesionmix)")
    done = sum(1 for n in names if n in written)
    manifest.data["state"] = ("interrupted" if summary.interrupted else
                              "complete" if done == len(names) else "incomplete")
    manifest.data["failed"] = summary.failed
    manifest.save()
    try:
        from .plot import plot_loads
        targets = [written[n]["target_load_mm3"] for n in names if n in written]
        achieved = [written[n]["achieved_load_mm3"] for n in names if n in written]
        plot_loads(layout.plot, reference, targets, achieved,
                   title=f"{layout.root.name}: {done} synthesised case(s)")
    except Exception as exc:  # noqa: BLE001 - a plot never fails the run
        print(f"warning: could not draw {layout.plot}: {exc}", file=sys.stderr)


def default_workers() -> int:
    """The machine's cores (``os.cpu_count()``; at least 1)."""
    return max(os.cpu_count() or 1, 1)


__all__ += ["cleanup", "default_workers", "load_recipe", "EXIT_OK", "EXIT_FAILED", "EXIT_INPUT",
            "EXIT_INTERRUPTED"]
