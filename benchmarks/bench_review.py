"""Review benchmark on the 1 mm brain: next case shown in the Review dock, QC page drawn.

    xvfb-run -a python benchmarks/bench_review.py [--sources 4] [--n 8] [--save]

Makes the 1 mm brain sample (``python -m napari_lesionmix.sample_data brain --resolution 1``)
and an export of it (``lesionmix generate``) in a temporary folder, then measures, in one
run:

(a) **next case ready**: ``ReviewSession.next()`` over every case of the export (read
    the case and its source with every check, lesions by origin, difference map), the
    median over the cases; the target for the Review dock is ≤ 1 s to *shown*, which
    adds drawing the layers (measured with the dock);
(b) **QC page**: ``case_sheet`` + PNG for a synthesised case (median), the time per case
    of ``lesionmix qc``;
(c) **next case shown** (needs a display; ``xvfb-run`` gives one): napari with the Review
    dock on the export; the Next button is clicked and Qt events are processed until the
    canvas has drawn the new case; the time from the click to that draw, median over
    every case (target ≤ 1 s); then again with the three-plane view open, until all four
    canvases have drawn.

Prints the figures and writes them to a temporary file; ``--save`` writes
``benchmarks/results/review.json``. The CPU time other processes used meanwhile is
reported beside each figure (the machine may be shared).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import ForeignCPU, brain_cohort, output_args, save, scratch  # noqa: E402


def make_export(work: Path, sources: int, n: int) -> Path:
    cohort = brain_cohort(work, sources)
    out = work / "Dataset900_Brain1mm"
    subprocess.run([sys.executable, "-m", "napari_lesionmix.cli", "generate", str(cohort),
                    str(out), "--n", str(n), "--workers", "2", "--no-progress", "--recipe",
                    str(cohort / "lesionmix_recipe.json")], check=True)
    return out


def _has_display() -> bool:
    import os
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class _Draws:
    """Draw counts of several canvases."""

    def __init__(self, counts: list):
        self.counts = counts

    def all_after(self, before: list) -> bool:
        """Every canvas has drawn since the counts were ``before``."""
        return all(n > b for n, b in zip(self.counts, before))


def dock_next_case(export: Path, planes: bool = False) -> dict:
    """(c): click Next in the Review dock, time until the canvas (and with ``planes`` the
    three-plane view's canvases too) has drawn the case."""
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_lesionmix._widgets.review_dock import ReviewDock

    def pump(cond, timeout=60.0):
        end = time.perf_counter() + timeout
        while not cond():
            QApplication.processEvents()
            if time.perf_counter() > end:
                raise TimeoutError("the GUI did not answer")

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1280, 800)
    qtviewers = [viewer.window._qt_viewer]
    if planes:
        _, view3 = viewer.window.add_plugin_dock_widget("napari-lesionmix", "Three-plane view")
        qtviewers += list(view3.canvases.values())
    counts = [0] * len(qtviewers)
    for i, qv in enumerate(qtviewers):
        canvas = getattr(qv.canvas, "_scene_canvas", qv.canvas)
        canvas.events.draw.connect(lambda e, i=i: counts.__setitem__(i, counts[i] + 1))
    draws = _Draws(counts)
    dock = ReviewDock(viewer)
    viewer.window.add_dock_widget(dock, name="Review", area="right")
    dock.open(export)
    pump(lambda: draws.all_after([0] * len(counts)))
    changed = {"at": None}
    dock.session.case_changed.connect(lambda c: changed.__setitem__("at", list(counts)))
    times = []
    for _ in range(len(dock.session.visible()) - 1):
        pump(lambda: True, 1)
        changed["at"] = None
        t0 = time.perf_counter()
        dock.next_btn.click()
        pump(lambda: changed["at"] is not None and draws.all_after(changed["at"]))
        times.append(time.perf_counter() - t0)
    viewer.close()
    return {"median": round(statistics.median(times), 3), "max": round(max(times), 3),
            "n": len(times)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=4, help="1 mm brain cases to make")
    parser.add_argument("--n", type=int, default=8, help="cases to synthesise from them")
    output_args(parser, "review")
    a = parser.parse_args(argv)

    from napari_lesionmix.review.qc import case_sheet
    from napari_lesionmix.review.session import ReviewSession

    with scratch("lesionmix-bench-review-") as tmp:
        t0 = time.perf_counter()
        export = make_export(tmp, a.sources, a.n)
        shown = shown3 = None
        if _has_display():
            with ForeignCPU() as busy:
                t1 = time.perf_counter()
                shown = dock_next_case(export)
            shown["foreign_cpu_s"] = round(busy.seconds, 1)
            shown["wall_s"] = round(time.perf_counter() - t1, 1)
            with ForeignCPU() as busy:
                t1 = time.perf_counter()
                shown3 = dock_next_case(export, planes=True)
            shown3["foreign_cpu_s"] = round(busy.seconds, 1)
            shown3["wall_s"] = round(time.perf_counter() - t1, 1)
        setup = time.perf_counter() - t0
        session = ReviewSession(reviewer="bench")
        t0 = time.perf_counter()
        session.open(export)
        t_open = time.perf_counter() - t0
        steps = []
        for _ in range(len(session.visible())):
            t0 = time.perf_counter()
            case = session.next()
            steps.append((case.name, time.perf_counter() - t0))
        pages = []
        for row in session.visible():
            if row.kind != "synthesised":
                continue
            case = session.go(row.name)
            t0 = time.perf_counter()
            sheet = case_sheet(case)
            if sheet is not None:
                sheet.save(tmp / f"{row.name}.png")
                pages.append(time.perf_counter() - t0)
        shape = session.current.result.labels.shape

    res = {
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "grid": list(shape), "cases": len(steps), "setup_s": round(setup, 1),
        "open_s": round(t_open, 3),
        "next_case_ready_s": {"median": round(statistics.median(t for _, t in steps), 3),
                              "max": round(max(t for _, t in steps), 3),
                              "each": {n: round(t, 3) for n, t in steps}},
        "qc_page_s": {"median": round(statistics.median(pages), 3) if pages else None,
                      "pages": len(pages)},
        "next_case_shown_s": shown,
        "next_case_shown_with_three_planes_s": shown3,
    }
    print(f"1 mm brain {tuple(shape)}, {len(steps)} cases (export made in {setup:.0f} s)")
    print(f"open the dataset: {t_open:.3f} s")
    print(f"next case ready (model): median {res['next_case_ready_s']['median']:.3f} s, "
          f"max {res['next_case_ready_s']['max']:.3f} s")
    if pages:
        print(f"QC page: median {res['qc_page_s']['median']:.3f} s over {len(pages)} pages")
    if shown is None:
        print("next case shown in the dock: skipped (no display; run under xvfb-run -a)")
    else:
        print(f"next case shown in the Review dock: median {shown['median']:.3f} s, max "
              f"{shown['max']:.3f} s over {shown['n']} cases (target <= 1 s)")
        print(f"... with the three-plane view open (every canvas drawn): median "
              f"{shown3['median']:.3f} s, max {shown3['max']:.3f} s")
    if shown is not None:
        print(f"(other processes used {shown['foreign_cpu_s']} and "
              f"{shown3['foreign_cpu_s']} CPU s during the two dock runs of "
              f"{shown['wall_s']} and {shown3['wall_s']} s on {_cpus()} CPUs)")
    save(res, a, "review")
    return 0


def _cpus() -> int:
    import os
    return os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
