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
    every case (target ≤ 1 s).

Prints the figures; ``--save`` also writes ``benchmarks/results/review.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_export(work: Path, sources: int, n: int) -> Path:
    recipe = HERE.parent / "napari_lesionmix" / "sample_data" / "brain_mr" / "lesionmix_recipe.json"
    subprocess.run([sys.executable, "-m", "napari_lesionmix.sample_data", "brain", "--resolution",
                    "1", "--out", str(work), "--n", str(sources)], check=True,
                   stdout=subprocess.DEVNULL)
    out = work / "Dataset900_Brain1mm"
    subprocess.run([sys.executable, "-m", "napari_lesionmix.cli", "generate",
                    str(work / "brain_mr"), str(out), "--n", str(n), "--workers", "2",
                    "--no-progress", "--recipe", str(recipe)], check=True)
    return out


def _has_display() -> bool:
    import os
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def dock_next_case(export: Path) -> dict:
    """(c): click Next in the Review dock, time until the canvas has drawn the case."""
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
    qv = viewer.window._qt_viewer
    canvas = getattr(qv.canvas, "_scene_canvas", qv.canvas)
    draws = {"n": 0}
    canvas.events.draw.connect(lambda e: draws.__setitem__("n", draws["n"] + 1))
    dock = ReviewDock(viewer)
    viewer.window.add_dock_widget(dock, name="Review", area="right")
    dock.open(export)
    pump(lambda: draws["n"] > 0)
    changed = {"at": None}
    dock.session.case_changed.connect(lambda c: changed.__setitem__("at", draws["n"]))
    times = []
    for _ in range(len(dock.session.visible()) - 1):
        pump(lambda: True, 1)
        changed["at"] = None
        t0 = time.perf_counter()
        dock.next_btn.click()
        pump(lambda: changed["at"] is not None and draws["n"] > changed["at"])
        times.append(time.perf_counter() - t0)
    viewer.close()
    return {"median": round(statistics.median(times), 3), "max": round(max(times), 3),
            "n": len(times)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=4, help="1 mm brain cases to make")
    parser.add_argument("--n", type=int, default=8, help="cases to synthesise from them")
    parser.add_argument("--save", action="store_true",
                        help="write benchmarks/results/review.json")
    a = parser.parse_args(argv)

    from napari_lesionmix.review.qc import case_sheet
    from napari_lesionmix.review.session import ReviewSession

    with tempfile.TemporaryDirectory(prefix="bench_review_") as tmp:
        t0 = time.perf_counter()
        export = make_export(Path(tmp), a.sources, a.n)
        shown = dock_next_case(export) if _has_display() else None
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
                sheet.save(Path(tmp) / f"{row.name}.png")
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
    if a.save:
        path = HERE / "results" / "review.json"
        path.write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
