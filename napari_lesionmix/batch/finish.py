"""The end of a run (steps 5 and 7 of :mod:`.runner`): clean-up, then dataset.json, the
grouped splits, loads.png, the manifest's final state and what the run could not do."""

from __future__ import annotations

from collections.abc import Callable

from .layout import OutputLayout, write_dataset_json
from .manifest import Manifest, file_sizes
from .options import Plan, RunSummary
from .prepare import Setup
from .report import unchanged_cause
from .splits import write_splits

__all__ = ["DESCRIPTION", "cleanup", "finish"]

DESCRIPTION = "LesionMix augmented dataset (napari-lesionmix)"


def cleanup(layout: OutputLayout, manifest: Manifest, names: list[str],
            keep: set | frozenset = frozenset()) -> int:
    """Delete temporaries and the files of every planned case that is not complete.

    A case is complete when its manifest entry says ``written`` and each of its files
    exists with the recorded size; otherwise its entry is dropped and its files deleted.
    Nothing else is deleted: files outside the plan that no run recorded made the run
    refuse before it started (``runner.check_output``). ``keep`` is not used any more
    (kept for callers).

    Returns
    -------
    int
        Files deleted.
    """
    removed = layout.remove_temporaries()
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
    if changed:
        manifest.save()
    return removed


def finish(source, setup: Setup, plan: Plan, layout: OutputLayout, manifest: Manifest,
           summary: RunSummary, say: Callable[[str], None] = print) -> None:
    """Clean-up, dataset.json, splits_final.json, loads.png, the manifest's final state,
    and the notes on what could not be done."""
    names = plan.names
    layout.release_reserve()  # room for the last writes, even on a full disk
    cleanup(layout, manifest, names, keep=set(manifest.data.get("originals", {})))
    written = manifest.written()
    done = [n for n in names if n in written]
    summary.names = done
    n_orig = len(manifest.data.get("originals", {}))
    _write("dataset.json", say, write_dataset_json, layout, source.channel_names,
           source.labels, n_orig + len(done), source.meta, DESCRIPTION)
    summary.unchanged = [n for n in done if written[n].get("unchanged")]
    notes = []
    if summary.unchanged:
        cause = unchanged_cause([written[n] for n in summary.unchanged], setup.recipe,
                                source.labels, setup.reference_loads())
        notes.append(f"{len(summary.unchanged)} of {len(done)} synthesised case(s) equal their "
                     f"source (no voxel changed): {cause}")
    splits = _write("splits_final.json", say, write_splits, layout, manifest)
    if splits is not None and splits[0] is None:
        notes.append(splits[1])
    if summary.stopped:
        notes.append(f"stopped: {summary.stopped}")
    summary.notes = notes
    summary.state = ("interrupted" if summary.interrupted else
                     "complete" if len(done) == len(names) else "incomplete")
    manifest.data.update(state=summary.state, failed=summary.failed,
                         unchanged=summary.unchanged, notes=notes)
    _write("manifest.json", say, manifest.save, True)  # compacted: every entry, no journal
    for note in notes:
        say(f"note: {note}")
    try:
        from .plot import plot_loads
        plot_loads(layout.plot, setup.reference_loads(),
                   [written[n]["target_load_mm3"] for n in done],
                   [written[n]["achieved_load_mm3"] for n in done],
                   title=f"{layout.root.name}: {len(done)} synthesised case(s)",
                   tmp_dir=layout.tmp)
    except Exception as exc:  # noqa: BLE001 - a plot never fails the run
        say(f"warning: could not draw {layout.plot}: {exc}")




def _write(what: str, say: Callable[[str], None], fn, *args):
    """``fn(*args)``; a file that cannot be written (OUTPUT full, ...) is said, not raised:
    what is on disk stays consistent (every write is atomic) and ``--resume`` redoes it."""
    try:
        return fn(*args)
    except OSError as exc:
        say(f"error: could not write {what}: {exc}")
        return None
