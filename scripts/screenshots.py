"""Screenshots of the plugin at work, made from the sample data.

Run under a (virtual) display::

    xvfb-run -a .venv/bin/python scripts/screenshots.py [--save | --out DIR] [--only WHICH]

By default the PNGs go to a new temporary folder (printed); ``--save`` replaces the
committed ones in docs/images/.

Each is a whole 1280×800 window (the LesionMix panel on the right, the three-plane view
below), kept under ~400 KB:

- heatmap.png: brain sample, heatmap from the sample's training labels, a lesion selected;
- augment_preview.png: that lesion previewed elsewhere at scale 1.6, rotated 35°;
- inpaint_preview.png: another lesion's removal, previewed;
- synthesise.png: the Synthesise tab and a synthesised case;
- liver_heatmap.png: the liver CT sample with its organ-style heatmap;
- review.png: the Review dock on an export of the brain sample (``lesionmix generate``), four
  cases decided, an added lesion selected, the three-plane view following it;
- qc_page.png: the top of the ``lesionmix qc`` page of that case.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np

MAX_BYTES = 400_000
SIZE = (1280, 800)


def wait(condition, timeout: float = 120.0) -> None:
    """Process Qt events until ``condition()`` holds."""
    from qtpy.QtWidgets import QApplication

    deadline = time.time() + timeout
    while not condition():
        QApplication.processEvents()
        time.sleep(0.01)
        if time.time() > deadline:
            raise TimeoutError("the GUI did not finish in time")
    settle()


def settle(seconds: float = 0.3) -> None:
    """Let the canvas redraw."""
    from qtpy.QtWidgets import QApplication

    end = time.time() + seconds
    while time.time() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def raise_dock(widget) -> None:
    """Bring the panel's tab holding ``widget`` to the front."""
    panel = widget.parentWidget()
    while panel is not None and not hasattr(panel, "show_step"):
        panel = panel.parentWidget()
    if panel is not None:
        panel.tabs.setCurrentIndex([panel.docks[n] for n in panel.docks].index(widget))
    settle()


def save(viewer, path: Path) -> Path:
    """A whole-window screenshot as PNG under MAX_BYTES (palette, then smaller)."""
    from PIL import Image

    img = Image.fromarray(np.asarray(viewer.screenshot(canvas_only=False, flash=False)))
    img = img.convert("RGB")
    for scale in (1.0, 0.85, 0.7, 0.6, 0.5):
        im = img if scale == 1.0 else img.resize(
            (int(img.width * scale), int(img.height * scale)), Image.LANCZOS)
        buf = io.BytesIO()
        im.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buf, "PNG",
                                                                       optimize=True)
        if buf.tell() <= MAX_BYTES:
            break
    path.write_bytes(buf.getvalue())
    print(f"{path}: {im.width}x{im.height}, {buf.tell() // 1024} KB")
    return path


def zoom_in(viewer, factor: float = 2.0) -> None:
    """Fit the view, then zoom on the camera's centre (the edit), and let it draw."""
    centre = viewer.scene.camera.center
    viewer.reset_view()
    viewer.scene.camera.center = centre
    viewer.scene.camera.zoom *= factor
    settle(0.5)


def labels_dir(sample: str) -> Path:
    from napari_lesionmix.sample_data import sample_paths

    return sample_paths(sample)[0][1].parent


def brain(out: Path) -> None:
    import napari

    from napari_lesionmix._demo import open_demo

    viewer = napari.Viewer(title="LesionMix", show=True)
    viewer.window._qt_window.resize(*SIZE)
    viewer, docks = open_demo(viewer, "brain_mr")
    st = docks["Case"].state
    wait(lambda: st.case is not None)
    # heatmap from the sample's training labels, a lesion selected
    lik = docks["Likelihood"]
    raise_dock(lik)
    lik.sigma.setValue(3.0)  # mm: a smoother heatmap reads better in a picture
    lik.build_from_folder(labels_dir("brain_mr"))
    wait(lambda: not lik.workers and st.likelihood is not None)
    order = np.argsort([-les.voxels for les in st.lesions])
    first, second = int(order[0]), int(order[min(1, len(order) - 1)])
    st.select(first)
    settle(0.5)
    save(viewer, out / "heatmap.png")

    # augment preview: the selected lesion added at a sampled location, scale 1.6, rotated
    aug = docks["Augment"]
    raise_dock(aug)
    aug.add_mode.setChecked(True)
    aug.sample_location()  # the views go there
    aug.grid.sliders["scale"].setValue(1.6)
    aug.grid.sliders["rotate0"].setValue(35.0)
    wait(lambda: st.has_preview)
    zoom_in(viewer)
    save(viewer, out / "augment_preview.png")

    # inpaint preview of another lesion
    aug.clear()
    st.select(second)  # the views go there
    aug.remove_mode.setChecked(True)
    wait(lambda: st.has_preview)
    zoom_in(viewer)
    save(viewer, out / "inpaint_preview.png")

    # synthesise one case with the 'high' distribution over the sample's loads
    aug.clear()
    aug.add_mode.setChecked(True)
    syn = docks["Synthesise"]
    raise_dock(syn)
    syn.load_reference_folder(labels_dir("brain_mr"))
    wait(lambda: not syn.workers)
    syn.form.combo.setCurrentText("high")
    syn.synthesize_one()
    wait(lambda: not syn.workers and syn.last_result is not None, 300)
    for layer in viewer.layers:
        if layer.name.endswith("_lmix"):
            continue
        layer.visible = layer.metadata.get("lesionmix_role") == "likelihood"
    added = [op for op in syn.last_result.provenance.accepted if op.center]
    viewer.reset_view()
    if added:
        st.focus_requested.emit(tuple(added[len(added) // 2].center))
    settle(0.5)
    save(viewer, out / "synthesise.png")
    viewer.close()


def liver(out: Path) -> None:
    import napari

    from napari_lesionmix._demo import open_demo

    viewer = napari.Viewer(title="LesionMix", show=True)
    viewer.window._qt_window.resize(*SIZE)
    viewer, docks = open_demo(viewer, "liver_ct")
    st = docks["Case"].state
    wait(lambda: st.case is not None)
    lik = docks["Likelihood"]
    raise_dock(lik)
    lik.build_from_folder(labels_dir("liver_ct"))
    wait(lambda: not lik.workers and st.likelihood is not None)
    if st.lesions:
        st.select(int(np.argmax([les.voxels for les in st.lesions])))
    settle(0.5)
    save(viewer, out / "liver_heatmap.png")
    viewer.close()


def review(out: Path) -> None:
    import subprocess
    import sys

    import napari
    from PIL import Image

    from napari_lesionmix._widgets.review_dock import ReviewDock
    from napari_lesionmix.sample_data import sample_dir

    work = Path(tempfile.mkdtemp(prefix="lesionmix-review-"))
    export = work / "Dataset501_BrainLMix"
    brain_dir = sample_dir("brain_mr")
    subprocess.run([sys.executable, "-m", "napari_lesionmix.cli", "generate", str(brain_dir),
                    str(export), "--n", "6", "--workers", "1", "--no-progress", "--recipe",
                    str(brain_dir / "lesionmix_recipe.json")], check=True)
    viewer = napari.Viewer(title="LesionMix", show=True)
    viewer.window._qt_window.resize(*SIZE)
    viewer.window.add_plugin_dock_widget("napari-lesionmix", "Three-plane view")
    viewer.open(str(export / "dataset.json"), plugin=None)  # opens the Review dock
    dock = next(w.inner_widget() for w in viewer.window._wrapped_dock_widgets.values()
                if isinstance(w.inner_widget(), ReviewDock))
    synthesised = [r.name for r in dock.session.visible() if r.kind == "synthesised"]
    for case, decision in zip(synthesised, ("accept", "accept", "reject", "flag")):
        dock.session.decide(decision, "example", name=case)  # the tally shows decisions
    name = max((r for r in dock.session.visible() if r.kind == "synthesised"),
               key=lambda r: r.added or 0).name
    dock.session.go(name)
    lesions = dock.session.current.changes.lesions
    added = [i for i, les in enumerate(lesions) if les.origin == "added"]
    pick = max(added, key=lambda i: lesions[i].voxels) if added else 0
    dock.lesions.selectRow(pick)
    dock.session.select_lesion(pick)
    viewer.reset_view()
    dock.layers.go_to(lesions[pick])
    settle(0.8)
    save(viewer, out / "review.png")
    viewer.close()
    subprocess.run([sys.executable, "-m", "napari_lesionmix.cli", "qc", str(export),
                    "--cases", name], check=True, capture_output=True)
    page = Image.open(export / "qc" / f"{name}.png").convert("RGB")
    from napari_lesionmix.review.qc import CELL, GAP, HEAD
    page = page.crop((0, 0, page.width, min(page.height, HEAD + 8 + 3 * (CELL + GAP) - GAP)))
    page.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out / "qc_page.png",
                                                                     optimize=True)
    print(f"{out / 'qc_page.png'}: {page.width}x{page.height}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", action="store_true",
                        help="replace the committed screenshots in docs/images/")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the PNGs (default: a new temporary folder)")
    parser.add_argument("--only", choices=("brain", "liver", "review"), default=None,
                        help="make only these screenshots (default: all)")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = (Path(__file__).resolve().parents[1] / "docs" / "images" if args.save
                    else Path(tempfile.mkdtemp(prefix="lesionmix-screenshots-")))
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"screenshots go to {args.out}")
    parser_only = args.only
    if parser_only in (None, "brain"):
        brain(args.out)
    if parser_only in (None, "liver"):
        liver(args.out)
    if parser_only in (None, "review"):
        review(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
