"""The "Synthesise and export" dock: target loads, one synthesised case, a whole export.

- **Target load**: the recipe's ``load_distribution`` and ``load`` parameters (in ml
  here, mm³ in the recipe), drawn over the reference loads (:class:`LoadPlot`).
  Reference loads: ``recipe.load.reference`` when the recipe has them (set by "From a
  folder…", which reads the lesion load of every label file of a folder or dataset in
  a worker), else the current case's load — the command line's rule for a one-case
  input — or, when another bank was set, that bank's per-case loads.
- **Synthesise one**: :func:`~napari_lesionmix.batch.tasks.synthesize_one`, the batch
  code that makes output ``k`` of a run (its seed ``case_seeds(recipe.seed, n)[k]`` and
  its name), on the current case in a worker; the result opens as ``<layer>_lmix`` layers
  on the source's geometry.
- **Export**: :func:`~napari_lesionmix.batch.runner.generate`, the run behind
  ``lesionmix generate``, over the current case held in memory
  (:class:`~napari_lesionmix.batch.memory.MemorySource`, with the plugin's bank, map and
  reference loads), in a worker with a progress bar; Cancel stops after the case in
  progress and leaves only complete cases and a manifest that lists exactly them.
- **Recipe**: saved and loaded as the JSON the command line takes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
from napari.layers import Image
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)
from superqt.utils import signals_blocked

from .._layers import AXES_KEY, GEOMETRY_KEY, geometry_of_layer, grid_kwargs
from ..batch.memory import MemorySource
from ..batch.options import GenerateOptions, RunError
from ..batch.prepare import loads_from_files
from ..batch.runner import check_output, generate
from ..batch.tasks import Shared, synthesize_one
from ..core.image_io import cast_to
from ..core.io_utils import label_files_of
from ..core.lesions import lesion_load
from ..core.load import LoadDistribution
from ..core.recipe import Recipe
from ..session.errors import SessionError
from ._base import Cancelled, LesionMixDock, _gui_safe, seed_box
from .synth_form import LoadForm
from .synth_plot import LoadPlot
from .viewer_link import notify

__all__ = ["SynthDock"]

SUFFIX = "_lmix"
COLLAPSE_STYLE = "QLabel { color: #ff9f1c; }"


class SynthDock(LesionMixDock):
    """Target-load distribution, Synthesise one, Export, recipe files.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Attributes
    ----------
    last_result : SynthResult or None
        The last "Synthesise one" result.
    last_export : ExportSummary or None
        The last export's summary.
    export_worker : worker or None
        The export in progress.
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        self.last_result = None
        self.last_export = None
        self.export_worker = None
        self._kept_reference: list | None = None  # folder loads while 'fixed' is chosen
        self._case_load_key = None
        self._case_load = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.redraw)
        self._build()
        self._connect()
        self.show_recipe()

    # -- building -----------------------------------------------------------------------------
    def _build(self) -> None:
        lay = self.layout()
        box = QGroupBox("Target lesion load")
        inner = QVBoxLayout(box)
        self.form = LoadForm()
        inner.addWidget(self.form)
        row = QHBoxLayout()
        self.reference_label = QLabel("reference: none")
        self.reference_label.setWordWrap(True)
        self.from_folder = QPushButton("From a folder…")
        self.use_case = QPushButton("Use the case")
        row.addWidget(self.reference_label, 1)
        row.addWidget(self.from_folder)
        row.addWidget(self.use_case)
        inner.addLayout(row)
        self.plot = LoadPlot(self)
        inner.addWidget(self.plot)
        lay.addWidget(box)

        box = QGroupBox("Cases")
        form = QFormLayout(box)
        self.n_cases = QSpinBox()
        self.n_cases.setRange(1, 100000)
        self.n_cases.setValue(10)
        self.index = QSpinBox()
        self.index.setRange(0, 9)
        self.seed = seed_box()
        row = QHBoxLayout()
        self.output = QLineEdit()
        self.output.setPlaceholderText("output dataset folder (nnU-Net raw layout)")
        self.browse = QPushButton("…")
        row.addWidget(self.output, 1)
        row.addWidget(self.browse)
        self.originals = QCheckBox("include the source case")
        self.originals.setChecked(True)
        self.overwrite = QCheckBox("replace a previous export")
        form.addRow("Number of cases", self.n_cases)
        form.addRow("Seed", self.seed)
        form.addRow("Preview output #", self.index)
        form.addRow("Output", row)
        form.addRow(self.originals)
        form.addRow(self.overwrite)
        lay.addWidget(box)

        row = QHBoxLayout()
        self.synth_btn = QPushButton("Synthesise one")
        self.export_btn = QPushButton("Export")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        for b in (self.synth_btn, self.export_btn, self.cancel_btn):
            row.addWidget(b)
        lay.addLayout(row)
        row = QHBoxLayout()
        self.save_btn = QPushButton("Save recipe…")
        self.load_btn = QPushButton("Load recipe…")
        row.addWidget(self.save_btn)
        row.addWidget(self.load_btn)
        lay.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        lay.addStretch(1)

    def _connect(self) -> None:
        st = self.state
        self.form.edited.connect(self.apply_load)
        self.seed.valueChanged.connect(self.apply_seed)
        self.n_cases.valueChanged.connect(lambda n: self.index.setMaximum(n - 1))
        self.from_folder.clicked.connect(self._ask_folder)
        self.use_case.clicked.connect(self.use_case_reference)
        self.browse.clicked.connect(self._ask_output)
        self.synth_btn.clicked.connect(self.synthesize_one)
        self.export_btn.clicked.connect(self._export_clicked)
        self.cancel_btn.clicked.connect(self.cancel)
        self.save_btn.clicked.connect(self._ask_save)
        self.load_btn.clicked.connect(self._ask_load)
        self.listen(st.recipe_changed, self.show_recipe)
        for sig in (st.case_changed, st.lesions_changed, st.bank_changed):
            self.listen(sig, self.schedule)
        idle = lambda: self.export_worker is None  # noqa: E731
        self.enable_when(lambda: st.case is not None and idle(), self.synth_btn,
                         self.export_btn)
        self.enable_when(lambda: st.case is not None, self.use_case)

    def idle_reason(self) -> str:
        """No case: nothing to synthesise from."""
        return self.state.why_idle()

    # -- recipe <-> controls ----------------------------------------------------------------
    def show_recipe(self) -> None:
        """Show the recipe's distribution, parameters and seed; redraw the plot."""
        r = self.state.recipe
        self.form.set_values(r.load_distribution, r.load)
        with signals_blocked(self.seed):
            self.seed.setValue(int(r.seed))  # the real seed: 64 bits
        self.schedule()

    def apply_load(self) -> None:
        """Write the form's distribution and parameters into the recipe."""
        kind = self.form.kind()
        load = self.form.params_mm3()
        ref = self.state.recipe.load.get("reference") or self._kept_reference
        if kind == "fixed":
            self._kept_reference = ref
            if "value" not in load:  # a fixed load needs a value: start from the median
                refs = self.reference_loads()
                load["value"] = float(np.median(refs)) if refs else 0.0
                self.form.set_param("value", load["value"])
        elif ref:
            load["reference"] = list(ref)
            self._kept_reference = None
        try:
            self.state.update_recipe(load_distribution=kind, load=load)
        except SessionError as exc:
            notify(f"Synthesise: {exc}", "warning")
            self.show_recipe()

    def apply_seed(self, value: int) -> None:
        """Write the seed into the recipe."""
        try:
            self.state.update_recipe(seed=int(value))
        except SessionError as exc:
            notify(f"Synthesise: {exc}", "warning")

    # -- reference loads ----------------------------------------------------------------------
    def case_load(self) -> float:
        """The current case's lesion load in mm³ (cached per case, classes and history)."""
        st = self.state
        if st.case is None:
            return 0.0
        classes = st.lesion_classes
        key = (id(st.case), tuple(classes), st.version)
        if key != self._case_load_key:
            self._case_load = lesion_load(st.case.labels, classes,
                                          st.case.geometry.spacing_zyx)[0]
            self._case_load_key = key
        return self._case_load

    def reference_loads(self) -> list[float]:
        """The reference loads in mm³ that synthesis uses (see the module docstring)."""
        st = self.state
        ref = st.recipe.load.get("reference") or self._kept_reference
        if ref:
            return [float(v) for v in ref]
        if st.case is None:
            return []
        if not st.bank_is_from_case and st.bank is not None:
            return [float(v) for v in st.bank.loads_by_case().values()]
        return [self.case_load()]

    def reference_source(self) -> str:
        """Where the reference loads come from, for people."""
        st = self.state
        if st.recipe.load.get("reference") or self._kept_reference:
            return "the recipe's load.reference"
        if st.case is None:
            return "none (no case)"
        if not st.bank_is_from_case and st.bank is not None:
            return "the lesion bank's cases"
        return f"case {st.case.name}"

    def load_reference_folder(self, folder: str | Path):
        """Read the lesion load of every label file of ``folder`` in a worker; the loads
        become ``recipe.load.reference``.

        Returns
        -------
        worker or None
        """
        try:
            paths = label_files_of(folder)
        except OSError as exc:
            notify(f"Synthesise: {exc}", "warning")
            return None
        r = self.state.recipe
        return self.run_worker(loads_from_files, paths, r.lesion_classes, r.organ_label,
                               desc=f"Lesion loads of {len(paths)} label files",
                               on_done=self.set_reference)

    def set_reference(self, loads) -> None:
        """Use ``loads`` (mm³; a dict or a list) as the recipe's reference loads."""
        values = [float(v) for v in (loads.values() if isinstance(loads, dict) else loads)]
        if not values:
            notify("Synthesise: no reference loads", "warning")
            return
        if self.state.recipe.load_distribution == "fixed":
            self._kept_reference = values
            self.schedule()
            return
        load = dict(self.state.recipe.load, reference=values)
        try:
            self.state.update_recipe(load=load)
        except SessionError as exc:
            notify(f"Synthesise: {exc}", "warning")

    def use_case_reference(self) -> None:
        """Forget ``recipe.load.reference``: the reference is the case again."""
        self._kept_reference = None
        load = {k: v for k, v in self.state.recipe.load.items() if k != "reference"}
        try:
            self.state.update_recipe(load=load)
        except SessionError as exc:
            notify(f"Synthesise: {exc}", "warning")
        self.schedule()

    # -- plot ------------------------------------------------------------------------------
    def schedule(self, *_):
        """Redraw at the next event-loop turn (coalesces bursts of changes)."""
        self._timer.start()

    def distribution(self) -> tuple[LoadDistribution | None, str]:
        """The recipe's distribution over the reference loads, or (None, why not)."""
        try:
            return LoadDistribution.from_recipe(self.state.recipe, self.reference_loads()), ""
        except ValueError as exc:
            return None, str(exc)

    def redraw(self) -> None:
        """Redraw the plot and the reference line."""
        refs = self.reference_loads()
        dist, why = self.distribution()
        collapsed = collapse_note(dist, len(refs))
        self.plot.update_plot(refs, dist, why or collapsed)
        text = f"reference: {self.reference_source()}, {len(refs)} load(s)"
        if dist is not None:
            text += f"; {dist.describe()}"
        if collapsed:
            text += f"\n⚠ {collapsed}"
        self.reference_label.setText(text)
        self.reference_label.setStyleSheet(COLLAPSE_STYLE if collapsed else "")

    # -- synthesis --------------------------------------------------------------------------
    def _run_recipe(self) -> Recipe:
        """The recipe with lesion classes resolved, as ``lesionmix generate`` runs it."""
        r = self.state.recipe
        classes = self.state.lesion_classes
        if r.lesion_classes is None and classes:
            return r.replace(lesion_classes=list(classes))
        return r

    def _source_case(self):
        """A copy of the case without the preview; it names its source files when the
        layers came from files and nothing was applied since."""
        st = self.state
        st.clear_preview()
        case = st.case.copy()
        srcs, label_src = self.layers.source_files()
        if not st.undo_stack and label_src and all(srcs):
            case.image_paths, case.label_path = list(srcs), label_src
        return case

    def _ready(self, what: str) -> bool:
        st = self.state
        if st.case is None:
            notify(f"{what}: no case yet; choose the layers in the Case dock", "warning")
            return False
        if self.export_worker is not None:
            notify(f"{what}: an export is running", "warning")
            return False
        return True

    def _shared(self) -> Shared:
        """What every output case shares, from the plugin's state (ValueError if the bank
        cannot be built)."""
        st = self.state
        return Shared(self._run_recipe(), st.bank, st.likelihood, self.reference_loads())

    def synthesize_one(self):
        """Synthesise output ``k`` (the "Preview output #" box) of the current case in a
        worker, with the batch code that makes output ``k`` of an export, and open it as
        new layers.

        Returns
        -------
        worker or None
        """
        if not self._ready("Synthesise"):
            return None
        case = self._source_case()
        k = self.index.value()
        try:
            shared = self._shared()
        except ValueError as exc:
            notify(f"Synthesise: {exc}", "warning")
            return None
        self.status.setText("synthesising…")
        return self.run_worker(synthesize_one, case, shared, k, max(self.n_cases.value(), k + 1),
                               desc="Synthesise one", on_done=self.show_result,
                               on_error=lambda exc: self.status.setText(f"failed: {exc}"))

    def show_result(self, result) -> None:
        """Open a :class:`SynthResult` as layers named ``<source layer>_lmix``."""
        self.last_result = result
        out, prov = result.case, result.provenance
        new = []
        for c, src in enumerate(self.layers.image_layers):
            data = cast_to(out.channels[c], src.data.dtype)
            layer = self._put_layer("image", src, data, prov)
            layer.contrast_limits = src.contrast_limits
            layer.colormap = src.colormap
            new.append(layer)
        new.append(self._put_layer("labels", self.layers.label_layer, out.labels, prov))
        ops = len(prov.accepted)
        self.status.setText(
            f"{out.name}: target {prov.target_load_mm3 / 1000:.3f} ml, achieved "
            f"{prov.achieved_load_mm3 / 1000:.3f} ml ({prov.achieved_voxels} voxels), "
            f"{prov.status}, {ops} operation(s) ({prov.direction}), "
            f"{len(prov.operations) - ops} refused")

    def _put_layer(self, kind: str, src, data, prov):
        name = src.name + SUFFIX
        meta = {k: v for k, v in src.metadata.items() if k != "lesionmix_source"}
        meta[GEOMETRY_KEY] = src.metadata.get(GEOMETRY_KEY)
        meta[AXES_KEY] = src.metadata.get(AXES_KEY)
        meta["lesionmix_provenance"] = prov.to_dict()
        grid = grid_kwargs(geometry_of_layer(src))
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            if layer.data.shape == data.shape and isinstance(layer, Image) == (kind == "image"):
                layer.data = data
                layer.scale, layer.affine = grid["scale"], grid["affine"]
                layer.metadata = meta
                return layer
            self.viewer.layers.remove(layer)
        add = self.viewer.add_image if kind == "image" else self.viewer.add_labels
        return add(data, name=name, metadata=meta, **grid)

    # -- export -------------------------------------------------------------------------------
    def export(self, output: str | Path | None = None, n: int | None = None,
               after_case=None):
        """Export ``n`` synthesised cases of the current case to ``output`` in a worker.

        The run is :func:`~napari_lesionmix.batch.runner.generate`, the one behind
        ``lesionmix generate``, over the case in memory with the plugin's bank, map and
        reference loads.

        Parameters
        ----------
        output : path-like, optional
            Default: the Output box.
        n : int, optional
            Default: the Number of cases box.
        after_case : callable(k, name), optional
            Called in the worker once case ``k`` is recorded.

        Returns
        -------
        worker or None
            None when the export cannot start (a notification says why; nothing was
            written).
        """
        if not self._ready("Export"):
            return None
        n = self.n_cases.value() if n is None else int(n)
        output = self.output.text() if output is None else str(output)
        case = self._source_case()  # clears the preview: the bank is built without it
        try:
            shared = self._shared()
            source = MemorySource.from_case(case, bank=shared.bank, lmap=shared.lmap,
                                            reference_loads=shared.reference)
            out, _ = check_output(output, source, overwrite=self.overwrite.isChecked())
        except (RunError, ValueError) as exc:
            notify(f"Export: {exc}", "warning")
            return None
        self.output.setText(str(out))
        opts = GenerateOptions(source, out, n, recipe=shared.recipe,
                               originals=self.originals.isChecked(),
                               overwrite=self.overwrite.isChecked(), progress=False)
        holder: dict = {}
        messages: list = []

        def abort() -> bool:
            worker = holder.get("worker")
            return worker is not None and worker.abort_requested

        def on_result(res) -> None:
            if after_case is not None:
                after_case(res.k, res.name)

        def run(progress):
            def report(done: int, total: int) -> None:
                with contextlib.suppress(Cancelled):  # abort() stops the run after the case
                    progress(done, total)

            try:
                holder["summary"] = generate(opts, messages.append, abort=abort,
                                             on_result=on_result, progress=report)
            except RunError as exc:  # the output changed between the check and the run
                raise ValueError(str(exc)) from None
            return holder["summary"]

        self.status.setText(f"exporting {n} case(s) to {out}…")
        worker = self.run_worker(run, desc=f"Export {n} case(s)")
        holder["worker"] = worker
        self.export_worker = worker
        worker.finished.connect(_gui_safe(lambda: self._export_finished(holder, messages)))
        self.cancel_btn.setEnabled(True)
        self.update_enabled()
        return worker

    def _export_clicked(self) -> None:
        """The Export button: export to the typed folder; say when the case has another
        number of channels than its source dataset."""
        if self.state.case is not None:
            expected = source_channels(self.layers.label_layer)
            if expected is not None and expected != self.state.case.n_channels:
                notify(f"Export: the case has {self.state.case.n_channels} channel(s) but its "
                       f"source dataset has {expected}; tick every channel in the Case tab "
                       "if that is not what you want", "warning")
        self.export()

    def cancel(self) -> None:
        """Stop the export after the case in progress."""
        if self.export_worker is not None:
            self.export_worker.quit()
            self.status.setText("cancelling after the current case…")

    def _export_done(self, summary, messages=()) -> None:
        self.last_export = summary
        text = summary.line()
        failed = [m for m in messages if m.lstrip().startswith("failed ")]
        extra = summary.notes + failed[:1]
        self.status.setText(text + "".join(f"\n{m.strip()}" for m in extra))
        level = "info" if summary.exit_code == 0 and not summary.notes else "warning"
        notify(f"Export: {text}" + "".join(f"; {m.strip()}" for m in extra), level)

    def _export_finished(self, holder: dict | None = None, messages=()) -> None:
        """The export's worker ended (done, cancelled or failed): show its summary."""
        if holder is not None and "summary" in holder:
            self._export_done(holder["summary"], messages)
        self.export_worker = None
        self.cancel_btn.setEnabled(False)
        self.update_enabled()

    # -- recipe files -------------------------------------------------------------------------
    def save_recipe(self, path: str | Path) -> bool:
        """Save the recipe as JSON (the command line's ``--recipe``)."""
        try:
            self.state.recipe.to_json(path)
        except OSError as exc:
            notify(f"Synthesise: cannot save the recipe to {path}: {exc.strerror or exc}",
                   "warning")
            return False
        self.status.setText(f"recipe saved to {path}")
        return True

    def load_recipe(self, path: str | Path) -> bool:
        """Load a recipe JSON; every dock follows (the state's recipe event)."""
        self._kept_reference = None
        try:
            self.state.load_recipe(str(path))
        except SessionError as exc:
            notify(f"Synthesise: {exc}", "warning")
            return False
        self.status.setText(f"recipe loaded from {path}")
        return True

    # -- dialogs ---------------------------------------------------------------------------------
    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Folder of training label maps (or an nnU-Net dataset)")
        if folder:
            self.load_reference_folder(folder)

    def _ask_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output dataset folder")
        if folder:
            self.output.setText(folder)

    def _ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the recipe", "recipe.json",
                                              "JSON (*.json)")
        if path:
            self.save_recipe(path)

    def _ask_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load a recipe", "", "JSON (*.json)")
        if path:
            self.load_recipe(path)


def collapse_note(dist: LoadDistribution | None, n_reference: int) -> str:
    """A warning when the chosen distribution collapses to one load ("" when it does not).

    Examples
    --------
    >>> collapse_note(LoadDistribution("high", {}, [900.0]), 1)
    "'high' collapses to one load (0.900 ml): there is 1 reference load; read the loads of a training folder ('From a folder…') or choose 'fixed'"
    """
    if dist is None or dist.kind == "fixed":
        return ""
    lo, hi = dist.support()
    if dist.kind == "gaussian":
        spread = dist.params.get("std", float(np.std(dist.reference)) if
                                 dist.reference.size else 0.0)
        if spread > 0:
            return ""
    elif hi > lo:
        return ""
    return (f"{dist.kind!r} collapses to one load ({lo / 1000:.3f} ml): there "
            f"{'is' if n_reference == 1 else 'are'} {n_reference} reference load"
            f"{'' if n_reference == 1 else 's'}; read the loads of a training folder "
            "('From a folder…') or choose 'fixed'")


def source_channels(label_layer) -> int | None:
    """The number of channels of the dataset a label layer was read from (its
    ``dataset.json``), or None when it was not read from a dataset."""
    import json

    src = None if label_layer is None else label_layer.metadata.get("lesionmix_source")
    if not src:
        return None
    for folder in (Path(src).parent, Path(src).parent.parent):
        try:
            meta = json.loads((folder / "dataset.json").read_text())
            return len(meta["channel_names"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None
