"""GUI benchmark on the 1 mm brain sample: slider change → preview drawn, open, heatmap.

Run under a (virtual) display::

    xvfb-run -a .venv/bin/python benchmarks/bench_gui.py [--changes 25] [--save]

(``--save`` updates ``benchmarks/results/gui.json``; by default the figures go to a
temporary file.)

(a) The Augment dock's scale slider is set programmatically (``QLabeledDoubleSlider.
    setValue``, what the user's drag emits), then Qt events are processed until the
    vispy canvas has fired a draw event after the preview was applied; the time from
    ``setValue`` to that draw is one sample. Median over ``--changes`` changes (target
    ≤ 50 ms), with the engine's share (the dock's ``last_preview_ms``) beside it.
(b) Open the sample through the reader (file → layer data → layers → first draw) and
    build its heatmap from the case (Likelihood dock, thread worker, until the overlay
    is drawn).

The 1 mm case is generated into a temporary folder, removed at the end. ``--profile``
prints the top of a cProfile of the slider loop.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import platform
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import brain_cohort, output_args, save, scratch  # noqa: E402


def sample_case(work: Path) -> tuple[Path, Path]:
    """Image and label file of a 1 mm brain case, generated into ``work``."""
    data = brain_cohort(work, 1)
    return data / "imagesTr" / "brain01_0000.nii.gz", data / "labelsTr" / "brain01.nii.gz"


def pump(condition, timeout: float = 30.0) -> None:
    """Process Qt events until ``condition()`` holds."""
    from qtpy.QtWidgets import QApplication

    deadline = time.perf_counter() + timeout
    while not condition():
        QApplication.processEvents()
        if time.perf_counter() > deadline:
            raise TimeoutError("timed out waiting for the GUI")


class DrawCounter:
    """Counts the vispy canvas's draw events."""

    def __init__(self, viewer):
        qv = viewer.window._qt_viewer
        canvas = getattr(qv.canvas, "_scene_canvas", qv.canvas)
        self.n = 0
        canvas.events.draw.connect(self._on_draw)

    def _on_draw(self, event) -> None:
        self.n += 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=25)
    parser.add_argument("--profile", action="store_true")
    output_args(parser, "gui")
    args = parser.parse_args(argv)
    with scratch() as work:
        return _run(args, work)


def _run(args, work: Path) -> int:

    import napari

    from napari_lesionmix._reader import read_layer_data
    from napari_lesionmix._widgets._state import get_state
    from napari_lesionmix._widgets.augment_dock import AugmentDock
    from napari_lesionmix._widgets.case_dock import CaseDock
    from napari_lesionmix._widgets.likelihood_dock import LikelihoodDock

    img_path, lab_path = sample_case(work)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    draws = DrawCounter(viewer)
    pump(lambda: True)

    # (b) open: reader -> layers -> first draw
    t0 = time.perf_counter()
    before = draws.n
    for path, kind in ((img_path, "image"), (lab_path, "labels")):
        data, kwargs, _ = read_layer_data(path, kind)
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    pump(lambda: draws.n > before)
    open_s = time.perf_counter() - t0
    shape = viewer.layers[0].data.shape

    case_dock = CaseDock(viewer)
    lik = LikelihoodDock(viewer)
    aug = AugmentDock(viewer)
    for name, w in (("Case", case_dock), ("Likelihood", lik), ("Augment", aug)):
        viewer.window.add_dock_widget(w, name=name, area="right", tabify=name != "Case")
    st = get_state(viewer)
    pump(lambda: st.case is not None)

    t0 = time.perf_counter()
    added: dict = {}  # draw count when the overlay layer arrived (it may be drawn at once)
    viewer.layers.events.inserted.connect(lambda e: added.setdefault("draws", draws.n))
    lik.build_from_case()
    pump(lambda: not lik.workers and st.likelihood is not None and "draws" in added, 300)
    pump(lambda: draws.n > added["draws"])
    heatmap_s = time.perf_counter() - t0

    # (a) slider -> preview drawn
    st.select(int(np.argmax([les.voxels for les in st.lesions])))
    aug.add_mode.setChecked(True)
    assert aug.sample_location() is not None, "no location for the preview"
    pump(lambda: st.has_preview)
    assert viewer.dims.ndisplay == 2, "the benchmark measures the 2D view"
    slider = aug.grid.sliders["scale"]
    flag = {"preview": False}
    st.preview_changed.connect(lambda: flag.__setitem__("preview", True))
    values = [1.2 + 0.4 * (i % 5) / 4 + 0.01 * (i % 2) for i in range(args.changes)]
    times, engine = [], []

    def loop():
        for v in values:
            pump(lambda: True)
            flag["preview"] = False
            t = time.perf_counter()
            slider.setValue(v)
            seen = {}

            def drawn(seen=seen):
                if flag["preview"] and "draws" not in seen:
                    seen["draws"] = draws.n
                return "draws" in seen and draws.n > seen["draws"]

            pump(drawn, 10)
            times.append((time.perf_counter() - t) * 1000)
            engine.append(aug.last_preview_ms)

    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(loop)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    else:
        loop()

    result = {
        "case": str(img_path), "shape_zyx": list(shape), "ndisplay": viewer.dims.ndisplay,
        "slider_to_drawn_ms": {"median": statistics.median(times),
                               "p90": float(np.percentile(times, 90)),
                               "min": min(times), "max": max(times), "n": len(times),
                               "target_median": 50.0},
        "preview_compute_ms_median": statistics.median(engine),
        "open_s": open_s, "heatmap_from_case_s": heatmap_s,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "napari": napari.__version__},
    }
    print(json.dumps(result, indent=1))
    if not args.profile:
        save(result, args, "gui")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
