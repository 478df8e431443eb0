"""``lesionmix``: the command line, thin over :mod:`napari_lesionmix.core` and ``batch``.

Subcommands: ``generate``, ``stats``, ``likelihood``, ``replay``, ``verify``, ``splits``,
``prepare``, ``nnunet``, ``demo``; review: ``qa``, ``qc``, ``remove-rejected`` (in
:mod:`napari_lesionmix.review.commands`). Run ``lesionmix SUBCOMMAND --help`` for every
option and its default.

Exit codes (:mod:`napari_lesionmix.batch.exit_codes`): 0 success; 1 some cases failed (or
verify found problems); 2 bad input or options (nothing written); 130 interrupted by Ctrl-C;
143 stopped by SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from .batch.exit_codes import EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED

__all__ = ["main", "build_parser"]


def _err(msg: str) -> None:
    print(f"lesionmix: error: {msg}", file=sys.stderr, flush=True)


def _default_workers() -> int:
    from .batch.options import default_workers
    return default_workers()


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show each default and keep the description's line breaks.

    ``(default: X)`` is added unless the help already states the default in words, or
    the option is an on/off flag (off by default, which its help describes).
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text.lower() or isinstance(
                action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            return text
        if action.required or not action.option_strings:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(
        prog="lesionmix", formatter_class=_Formatter,
        description="LesionMix lesion-level data augmentation for nnU-Net datasets.\n"
                    "Exit codes: 0 ok, 1 some cases failed, 2 bad input or options, "
                    "130 interrupted, 143 terminated (SIGTERM).")
    from . import __version__
    p.add_argument("--version", action="version", version=f"napari-lesionmix {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    g = sub.add_parser(
        "generate", formatter_class=_Formatter,
        help="synthesise N cases into an nnU-Net v2 raw dataset",
        description=(
            "Synthesise N cases from INPUT into OUTPUT, an nnU-Net v2 raw dataset.\n\n"
            "INPUT is an nnU-Net v2 raw dataset (dataset.json, imagesTr/<case>_0000.nii.gz, "
            "labelsTr/<case>.nii.gz)\nor a folder with images/ and labels/ paired by name: "
            "labels/<case><ext> goes with images/<case>_0000<ext>,\nimages/<case>_0001<ext>, "
            "... or with the single image images/<case><ext>.\n\n"
            "Output k (0..N-1) is named <source>_lmix<k> (4+ digits) and starts from source "
            "case k mod (number of cases),\nsorted by name, with seed stream "
            "SeedSequence(seed).spawn(N)[k]: results do not depend on --workers or "
            "--scheduler.\nEvery input case is read and checked before anything is written."))
    g.add_argument("input", type=Path, metavar="INPUT", help="input dataset folder")
    g.add_argument("output", type=Path, metavar="OUTPUT", help="output dataset folder")
    g.add_argument("--n", type=int, required=True, help="number of cases to synthesise (required)")
    g.add_argument("--recipe", type=Path, default=None,
                   help="recipe JSON file (default: INPUT/lesionmix_recipe.json if the dataset "
                        "ships one, else the built-in recipe, whose lesion classes are the "
                        "dataset's labels but background and organ_label)")
    g.add_argument("--seed", type=int, default=None,
                   help="seed; overrides the recipe's (default: the recipe's seed, 0 if none)")
    g.add_argument("--workers", type=int, default=_default_workers(),
                   help="worker processes (1 runs in this process); default: the machine's "
                        f"cores ({_default_workers()} here)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the tasks on a Dask distributed cluster (tcp://host:port) instead "
                        "of local processes; OUTPUT and INPUT must be visible to its workers "
                        "(needs the [distributed] extra); default: none, a local process pool")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="finish the run in OUTPUT: keep complete cases, remove leftovers of "
                           "unfinished ones, redo them; refuses if the plan (input, recipe, "
                           "seed, N, options) differs")
    mode.add_argument("--overwrite", action="store_true",
                      help="replace a previous lesionmix run in OUTPUT: after the input is "
                           "checked, removes the files its manifest records (cases, originals, "
                           "provenance, .lesionmix/, dataset.json, manifest.json, splits, "
                           "loads.png) and nothing else; refuses a folder without a manifest "
                           "or holding files that run did not write")
    g.add_argument("--no-originals", dest="originals", action="store_false",
                   help="do not copy the input cases into OUTPUT (by default they are copied "
                        "byte for byte when the format is the same)")
    g.add_argument("--compression", type=int, default=None, metavar="L",
                   help="zlib level 1 (fast) .. 9 (small) of the written .nii.gz files; "
                        "default 3 (zlib-ng)")
    g.add_argument("--skip-bad", action="store_true",
                   help="go on without the bad input cases (listed in the summary and the "
                        "manifest); by default the run stops before writing anything")
    g.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (by default one is drawn on stderr)")

    s = sub.add_parser("stats", formatter_class=_Formatter,
                       help="lesions and lesion load per case of a dataset",
                       description="Per case: lesions and lesion load (ml and voxels); then the "
                                   "load distribution. Every case is read and checked.")
    s.add_argument("input", type=Path, metavar="INPUT", help="input dataset folder")
    s.add_argument("--recipe", type=Path, default=None,
                   help="recipe JSON for lesion classes, organ_label, min_voxels, connectivity "
                        "(default: INPUT/lesionmix_recipe.json if present, else built-in; "
                        "classes from the dataset's labels)")
    s.add_argument("--plot", type=Path, default=None, metavar="FILE",
                   help="also write a histogram of the loads to this PNG file (default: no plot)")
    s.add_argument("--json", dest="as_json", action="store_true",
                   help="print JSON instead of a table")

    lk = sub.add_parser("likelihood", formatter_class=_Formatter,
                        help="build the lesion likelihood map of a dataset",
                        description="Sum the lesion masks (or the organ label) of every case on "
                                    "the first case's grid, as generate does, and write it.")
    lk.add_argument("input", type=Path, metavar="INPUT", help="input dataset folder")
    lk.add_argument("-o", "--output", type=Path, required=True, metavar="MAP",
                    help="map file to write, e.g. MAP.nii.gz")
    lk.add_argument("--recipe", type=Path, default=None,
                    help="recipe JSON for classes and likelihood options (the flags below "
                         "override it); default: INPUT/lesionmix_recipe.json if present, "
                         "else the built-in recipe")
    lk.add_argument("--sigma", type=float, default=None, metavar="MM",
                    help="Gaussian smoothing in mm (default: the recipe's likelihood.sigma_mm, "
                         "0)")
    lk.add_argument("--organ-label", type=int, default=None, metavar="L",
                    help="organ-style map from this context label (default: the recipe's "
                         "organ_label, none: brain-style)")
    lk.add_argument("--floor", type=float, default=None, metavar="F",
                    help="share of the draws spread uniformly over the foreground, 0..1 "
                         "(default: the recipe's likelihood.floor, 0.05)")
    lk.add_argument("--overwrite", action="store_true", help="replace MAP if it exists")

    r = sub.add_parser("replay", formatter_class=_Formatter,
                       help="rebuild one synthesised case from its provenance file",
                       description="Rebuild one case exactly from its provenance JSON, reading "
                                   "the source files it names. Writes DIR/imagesTr/<case>_0000"
                                   "<ending> ... and DIR/labelsTr/<case><ending>.")
    r.add_argument("provenance", type=Path, metavar="PROVENANCE.json",
                   help="a provenance sidecar, e.g. OUTPUT/provenance/<case>.json")
    r.add_argument("-o", "--output", type=Path, required=True, metavar="DIR",
                   help="folder to write the case into")
    r.add_argument("--name", default=None,
                   help="case name (default: the provenance file's name without .json)")
    r.add_argument("--file-ending", default=None,
                   help="file format (default: the source label file's, .nii.gz if nnU-Net "
                        "cannot read that one)")
    r.add_argument("--overwrite", action="store_true", help="replace existing files")

    v = sub.add_parser("verify", formatter_class=_Formatter,
                       help="re-read every file of an output dataset and check it",
                       description="Re-read every file of an output dataset fully (gzip "
                                   "integrity, NaN/Inf, shapes and geometry per case, label "
                                   "values declared, numTraining, manifest against the files).")
    v.add_argument("output", type=Path, metavar="OUTPUT", help="dataset folder to check")

    sp = sub.add_parser(
        "splits", formatter_class=_Formatter,
        help="write or install the leak-free splits_final.json of an output",
        description=(
            "Write OUTPUT/splits_final.json: cross-validation folds grouped by source case, so "
            "that\nevery synthesised case trains only in the folds where its source trains and "
            "validation\nholds original cases only (generate writes it too). With --install, "
            "copy it to nnU-Net's\npreprocessed folder of the dataset, "
            "$nnUNet_preprocessed/<OUTPUT folder name>/: run it\nafter nnUNetv2_plan_and_"
            "preprocess and before nnUNetv2_train."))
    sp.add_argument("output", type=Path, metavar="OUTPUT", help="a lesionmix output folder")
    sp.add_argument("--install", action="store_true",
                    help="also copy the file to nnU-Net's preprocessed folder of the dataset")
    sp.add_argument("--preprocessed", type=Path, default=None, metavar="DIR",
                    help="nnU-Net's preprocessed root (default: $nnUNet_preprocessed)")
    sp.add_argument("--dataset", default=None, metavar="DatasetXXX_Name",
                    help="nnU-Net's dataset name (default: OUTPUT's folder name)")
    sp.add_argument("--overwrite", action="store_true",
                    help="with --install: replace a different splits_final.json already there")

    pr = sub.add_parser(
        "prepare", formatter_class=_Formatter,
        help="build the lesion bank, likelihood map and reference loads for training-time "
             "LesionMix",
        description=(
            "Read every case of DATASET once and write what the TorchIO, MONAI and nnU-Net "
            "transforms share into OUT:\nprepared.json (recipe, reference loads, per-case "
            "statistics), bank/ (the lesion bank, memory-mapped by\nevery data-loader "
            "worker), likelihood.nii.gz and, with --case-maps, the map on each case's grid."))
    pr.add_argument("input", type=Path, metavar="DATASET", help="input dataset folder")
    pr.add_argument("output", type=Path, metavar="OUT", help="folder to write")
    pr.add_argument("--recipe", type=Path, default=None,
                    help="recipe JSON (default: the dataset's lesionmix_recipe.json if it has "
                         "one, else the built-in recipe)")
    pr.add_argument("--case-maps", action="store_true",
                    help="also write the map read on each case's grid (maps/<case>.npy, one "
                         "float32 volume per case): patches of a case then read it by slicing")
    pr.add_argument("--skip-bad", action="store_true",
                    help="go on without bad cases (by default they stop the command)")
    pr.add_argument("--overwrite", action="store_true",
                    help="replace a prepared folder already in OUT")

    nn = sub.add_parser(
        "nnunet", formatter_class=_Formatter,
        help="make nnU-Net v2 find the LesionMix trainer (install-trainer / uninstall-trainer)",
        description=(
            "nnU-Net v2 finds a trainer only among the modules of its own folder "
            "nnunetv2/training/nnUNetTrainer\n(or of the folders in $nnUNet_extTrainer). "
            "install-trainer writes one small module there,\nnnUNetTrainerLesionMix.py, that "
            "imports napari-lesionmix's trainer; then\n  nnUNetv2_train DATASET 3d_fullres FOLD "
            "-tr nnUNetTrainerLesionMix\ntrains with LesionMix. uninstall-trainer removes the "
            "module. Neither touches a file it did not write."))
    nn_sub = nn.add_subparsers(dest="nnunet_command", metavar="ACTION", required=True)
    for action, text in (("install-trainer", "write the trainer module into nnU-Net's folder"),
                         ("uninstall-trainer", "remove the trainer module written by "
                                               "install-trainer")):
        x = nn_sub.add_parser(action, formatter_class=_Formatter, help=text, description=text)
        x.add_argument("--into", type=Path, default=None, metavar="DIR",
                       help="another folder (one listed in $nnUNet_extTrainer); default: "
                            "nnunetv2/training/nnUNetTrainer of this Python's nnU-Net")

    d = sub.add_parser("demo", formatter_class=_Formatter,
                       help="open napari with the brain sample and the plugin's docks",
                       description="Open napari with the brain sample and the plugin's docks "
                                   "(needs napari and a display; without one, run "
                                   "xvfb-run -a .venv/bin/lesionmix demo).")
    d.set_defaults(_demo=True)

    from .review.commands import add_commands as add_review_commands
    add_review_commands(sub, _Formatter)  # qa, qc, remove-rejected
    return p


# ------------------------------------------------------------------------------ commands
def cmd_generate(a) -> int:
    from .batch.options import GenerateOptions, RunError
    from .batch.runner import generate

    opts = GenerateOptions(input=a.input, output=a.output, n=a.n,
                           recipe=_recipe_for(a.input, a.recipe), seed=a.seed,
                           workers=a.workers, scheduler=a.scheduler, resume=a.resume,
                           overwrite=a.overwrite, originals=a.originals,
                           compression=a.compression, skip_bad=a.skip_bad, progress=a.progress)
    try:
        summary = generate(opts)
    except RunError as exc:
        _err(str(exc))
        return EXIT_INPUT
    except KeyboardInterrupt as exc:  # before any case ran: nothing to clean
        return _interrupted(exc)
    print(summary.line(), flush=True)
    return summary.exit_code


def _recipe_for(input_path: Path, given: Path | None) -> Path | None:
    """``--recipe`` if given, else the dataset's own ``lesionmix_recipe.json`` (said on
    stderr), else None: the built-in recipe."""
    from .core.recipe import dataset_recipe_path

    if given is not None:
        return given
    found = dataset_recipe_path(input_path)
    if found is not None:
        print(f"recipe: {found} (the dataset's own; --recipe FILE uses another)",
              file=sys.stderr, flush=True)
    return found


def _interrupted(exc: KeyboardInterrupt) -> int:
    from .batch.signals import Terminated

    if isinstance(exc, Terminated):
        _err("terminated (SIGTERM)")
        return EXIT_TERMINATED
    _err("interrupted")
    return EXIT_INTERRUPTED


def _dataset_and_recipe(path: Path, recipe_path: Path | None):
    from .batch.dataset import DatasetError, open_dataset
    from .batch.options import RunError, load_recipe
    try:
        return open_dataset(path), load_recipe(_recipe_for(path, recipe_path), None)
    except (DatasetError, RunError) as exc:
        raise SystemExit(_fail(str(exc))) from None


def _fail(msg: str) -> int:
    _err(msg)
    return EXIT_INPUT


def cmd_stats(a) -> int:
    import numpy as np

    from .batch.prepare import prepare
    from .batch.report import organ_like_classes
    from .core.recipe import RecipeError

    dataset, recipe = _dataset_and_recipe(a.input, a.recipe)
    try:
        prep = prepare(dataset, recipe, with_map=False)
    except RecipeError as exc:
        return _fail(f"recipe: {exc}")
    classes = prep.recipe.lesion_classes or []
    names = {int(v): k for k, v in (dataset.labels or {}).items()}
    values = sorted({int(v) for s in prep.good for v in prep.loads[s.name]["label_mm3"]}
                    | {v for v in names if v != 0})
    rows = [{"case": s.name, **prep.loads[s.name]} for s in prep.good]
    loads = np.array([r["load_mm3"] for r in rows], float)
    summary = {}
    if loads.size:
        q = np.quantile(loads, [0, 1 / 3, 0.5, 2 / 3, 1])
        summary = {"cases": len(rows), "with_lesions": int((loads > 0).sum()),
                   "lesions": int(sum(r["lesions"] for r in rows)),
                   "mean_ml": float(loads.mean() / 1000), "std_ml": float(loads.std() / 1000),
                   "min_ml": float(q[0] / 1000), "tertile_1_ml": float(q[1] / 1000),
                   "median_ml": float(q[2] / 1000), "tertile_2_ml": float(q[3] / 1000),
                   "max_ml": float(q[4] / 1000)}
    labels = [{"value": v, "name": names.get(v, f"label_{v}"), "lesion_class": v in classes,
               "organ_label": v == prep.recipe.organ_label} for v in values]
    organ_like = [] if prep.recipe.organ_label is not None else organ_like_classes(
        dataset.labels, classes)
    if a.as_json:
        print(json.dumps({"lesion_classes": classes, "organ_label": prep.recipe.organ_label,
                          "labels": labels, "cases": rows, "summary": summary,
                          "bad": [b.to_dict() for b in prep.bad]}, indent=1))
    else:
        print(f"{dataset.root} ({dataset.layout}), lesion classes {classes}, organ label "
              f"{prep.recipe.organ_label}, min_voxels {prep.recipe.min_voxels}")
        print("labels: " + ", ".join(
            f"{x['value']} {x['name']}" + (" (lesion class)" if x["lesion_class"] else
                                           " (organ)" if x["organ_label"] else "")
            for x in labels))
        w = max([len("case")] + [len(r["case"]) for r in rows])
        heads = [f"{x['name'][:12]} ml" for x in labels]
        print(f"{'case':<{w}}  {'lesions':>7}  {'load ml':>10}  {'voxels':>10}  "
              + "  ".join(f"{h:>15}" for h in heads))
        for r in rows:
            vols = [r["label_mm3"].get(str(x["value"]), 0.0) / 1000 for x in labels]
            print(f"{r['case']:<{w}}  {r['lesions']:>7d}  {r['load_mm3'] / 1000:>10.3f}  "
                  f"{r['load_voxels']:>10d}  " + "  ".join(f"{v:>15.3f}" for v in vols))
        if summary:
            print(f"{summary['cases']} cases ({summary['with_lesions']} with lesions), "
                  f"{summary['lesions']} lesions; load ml: mean {summary['mean_ml']:.3f} "
                  f"(std {summary['std_ml']:.3f}), min {summary['min_ml']:.3f}, tertiles "
                  f"{summary['tertile_1_ml']:.3f} / {summary['tertile_2_ml']:.3f}, median "
                  f"{summary['median_ml']:.3f}, max {summary['max_ml']:.3f}")
    for name, value in organ_like:
        print(f"note: label {value} ({name!r}) is counted as a lesion class because no "
              f"organ_label is set; for an organ dataset set \"organ_label\": {value} in the "
              "recipe", file=sys.stderr)
    for b in prep.bad:
        print(f"bad case {b.name}: {b.problem}", file=sys.stderr)
    if a.plot is not None and loads.size:
        from .batch.plot import plot_loads
        plot_loads(a.plot, loads, title=f"{dataset.root.name}: lesion load per case")
        print(f"wrote {a.plot}", file=sys.stderr)
    return EXIT_FAILED if prep.bad else EXIT_OK


def cmd_likelihood(a) -> int:
    from .batch.prepare import prepare
    from .core.io_utils import IMAGE_SUFFIXES, split_ext
    from .core.recipe import RecipeError

    if not split_ext(a.output.name)[1]:
        return _fail(f"{a.output}: the map's file name must end in one of "
                     f"{', '.join(IMAGE_SUFFIXES)} (it chooses the format)")
    dataset, recipe = _dataset_and_recipe(a.input, a.recipe)
    if a.output.exists() and not a.overwrite:
        return _fail(f"{a.output}: already exists; pass --overwrite to replace it")
    try:
        changes = {}
        if a.organ_label is not None:
            changes["organ_label"] = a.organ_label
        lk = recipe.likelihood
        changes["likelihood"] = {"sigma_mm": lk.sigma_mm if a.sigma is None else a.sigma,
                                 "floor": lk.floor if a.floor is None else a.floor,
                                 "align": lk.align}
        recipe = recipe.replace(**changes)
        prep = prepare(dataset, recipe, with_bank=False)
    except RecipeError as exc:
        return _fail(f"recipe: {exc}")
    for b in prep.bad:
        print(f"bad case {b.name}: {b.problem} (left out of the map)", file=sys.stderr)
    for line in prep.notices:
        print(f"notice: {line}", file=sys.stderr)
    if prep.lmap is None:
        return _fail(f"{dataset.root}: no lesion of classes {prep.recipe.lesion_classes} in any "
                     "case: the map would be zero everywhere (use --floor)")
    prep.lmap.save(a.output, overwrite=True)
    print(f"wrote {a.output}: {len(prep.good)} case(s), grid {prep.lmap.shape} "
          f"({prep.lmap.geometry.describe()})")
    return EXIT_FAILED if prep.bad else EXIT_OK


def cmd_replay(a) -> int:
    from .batch.layout import NNUNET_ENDINGS, OutputLayout
    from .core.errors import CaseError
    from .core.io_utils import split_ext
    from .core.mix import replay_from_files
    from .core.provenance import Provenance

    name = a.provenance.name.removesuffix(".json") if a.name is None else a.name
    if (not name or name in (".", "..") or name.startswith(".") or "/" in name
            or "\\" in name or "\0" in name):
        return _fail(f"--name {name!r}: must be a plain case name (no folder, not hidden): "
                     "the files are written inside -o")
    try:
        prov = Provenance.load(a.provenance)
        case = replay_from_files(prov)
    except (ValueError, CaseError, OSError) as exc:
        return _fail(f"{a.provenance}: cannot replay: {exc}")
    ending = a.file_ending or split_ext(Path(prov.source.get("label_path") or "x.nii.gz").name)[1]
    if ending not in NNUNET_ENDINGS:
        ending = ".nii.gz"
    layout = OutputLayout(a.output, ending, case.n_channels)
    images, label = layout.image_paths(name), layout.label_path(name)
    try:
        case.write(images, label, overwrite=a.overwrite)
    except FileExistsError as exc:
        return _fail(f"{exc} (pass --overwrite)")
    print(f"wrote {name}: {', '.join(str(p) for p in images + [label])}")
    return EXIT_OK


def cmd_verify(a) -> int:
    from .batch.verify import verify_output

    n, problems = verify_output(a.output)
    for p in problems:
        print(p)
    print(f"{a.output}: {n} case(s) checked, "
          + ("no problem found" if not problems else f"{len(problems)} problem(s)"))
    return EXIT_FAILED if problems else EXIT_OK


def cmd_splits(a) -> int:
    from .batch.layout import OutputLayout
    from .batch.lock import OutputLock
    from .batch.manifest import Manifest
    from .batch.options import RunError
    from .batch.splits import SplitError, install_splits, write_splits

    layout = OutputLayout(a.output.expanduser().resolve())
    try:
        manifest = Manifest.load(layout.manifest, layout.tmp)
    except ValueError as exc:
        return _fail(f"{exc} (splits are made from a lesionmix output's manifest)")
    try:
        with OutputLock(layout.root, "lesionmix splits"):
            splits, message = write_splits(layout, manifest)
    except RunError as exc:
        return _fail(str(exc))
    if splits is None:
        return _fail(message)
    print(message)
    for i, fold in enumerate(splits):
        print(f"fold {i}: train {len(fold['train'])} case(s), validate {len(fold['val'])}: "
              + ", ".join(fold["val"]))
    if a.install:
        try:
            target, written = install_splits(layout.root, a.preprocessed, a.dataset,
                                             a.overwrite)
        except SplitError as exc:
            return _fail(str(exc))
        print(f"{'installed' if written else 'already installed, identical'}: {target}")
    return EXIT_OK


def cmd_prepare(a) -> int:
    from .core.recipe import RecipeError
    from .integrations.prepared import PrepareError, write_prepared

    dataset, recipe = _dataset_and_recipe(a.input, a.recipe)
    try:
        data = write_prepared(dataset, recipe, a.output, case_maps=a.case_maps,
                              overwrite=a.overwrite, skip_bad=a.skip_bad,
                              description=dataset.describe())
    except (RecipeError, PrepareError) as exc:
        return _fail(str(exc))
    except FileExistsError as exc:
        return _fail(str(exc))
    for line in data.notices:
        print(f"notice: {line}", file=sys.stderr)
    print(f"wrote {data.describe()}")
    return EXIT_OK


def cmd_nnunet(a) -> int:
    from .integrations.nnunet.install import InstallError, install_trainer, uninstall_trainer

    try:
        if a.nnunet_command == "install-trainer":
            path, what = install_trainer(a.into)
            print(f"{what}: {path}\n"
                  "train with: nnUNetv2_train DATASET 3d_fullres FOLD -tr nnUNetTrainerLesionMix"
                  + (f"\n(after: export nnUNet_extTrainer={path.parent})" if a.into else ""))
        else:
            path, what = uninstall_trainer(a.into)
            print(f"{what}: {path}" if what == "removed" else f"nothing to remove: no {path}")
    except InstallError as exc:
        return _fail(str(exc))
    return EXIT_OK


def cmd_demo(a) -> int:
    import importlib.util
    if importlib.util.find_spec("napari") is None:
        return _fail("the demo needs napari: pip install 'napari-lesionmix[all]'")
    problem = _display_problem()
    if problem:
        return _fail(f"{problem}; napari needs a display. On a machine without a screen, run "
                     "it on a virtual one: xvfb-run -a .venv/bin/lesionmix demo (the set-up "
                     "script installs xvfb; or ssh -X from a machine with a display)")
    try:
        from ._demo import main as demo_main
    except ImportError as exc:
        return _fail(f"cannot start the demo: {exc}")
    demo_main()
    return EXIT_OK


def _display_problem() -> str:
    """Why Qt could not open a window here ("" when it can, as far as can be told)."""
    import os
    import subprocess

    if not sys.platform.startswith("linux"):
        return ""
    if os.environ.get("QT_QPA_PLATFORM"):
        return ""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display: neither DISPLAY nor WAYLAND_DISPLAY is set"
    # a display is named: check that Qt can reach it, in a child (Qt aborts if it cannot)
    probe = "from qtpy.QtWidgets import QApplication; QApplication([])"
    try:
        res = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if res.returncode != 0:
        where = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        return f"cannot open the display {where}"
    return ""


COMMANDS = {"generate": cmd_generate, "stats": cmd_stats, "likelihood": cmd_likelihood,
            "replay": cmd_replay, "verify": cmd_verify, "splits": cmd_splits,
            "prepare": cmd_prepare, "nnunet": cmd_nnunet, "demo": cmd_demo}

from .review.commands import COMMANDS as _REVIEW_COMMANDS  # noqa: E402

COMMANDS.update(_REVIEW_COMMANDS)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lesionmix`` console script; returns the exit code."""
    from .batch.signals import terminate_raises

    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":  # napari's event loop: SIGTERM ends it as it always did
            return COMMANDS[args.command](args)
        if argv is None and threading.current_thread() is threading.main_thread():
            # the process's own command: once it has returned, the work is done and the
            # process is ending (joining threads, pool finalisers); a SIGTERM then changes
            # nothing, so it is ignored rather than killing the process mid-exit (-15)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # SIGTERM outside a run's own handling (e.g. while the summary is printed after the
        # run has finished) is Terminated, ending with 143, not a kill by the signal
        with terminate_raises():
            return COMMANDS[args.command](args)
    except SystemExit as exc:
        return int(exc.code or 0)
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except OSError as exc:  # a file could not be written (no space, ...): it is named
        _err(str(exc) if exc.filename is None else f"{exc.filename}: {exc.strerror}")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
