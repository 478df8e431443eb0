"""QC pictures without napari: one PNG per changed case and an overview.

``lesionmix qc OUTPUT`` writes into ``OUTPUT/qc/`` (or ``--out``):

- ``<case>.png`` for every case with added or removed lesions: one row per lesion, the
  full axial slice of the result with the crop marked, then the source's and the
  result's axial, coronal and sagittal planes through the lesion, zoomed to a field of
  view of at least 50 mm. Outlines are drawn on the source only (amber: where a lesion
  was added, magenta: a lesion removed, blue: kept lesions), so the result is seen
  untouched beside it.
- ``overview.png`` (then ``overview_002.png``, ... past 40 cases): one tile per
  synthesised case (every case when there is none), the result's axial slice through
  its largest change with the outlines, its status, lesions added and removed, target
  and achieved load.

Slices are drawn in the radiological convention from each file's direction
(:mod:`.orient`) with Matplotlib's Agg canvas (no display, no pyplot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .changes import ORIGIN_CODES
from .orient import EDGE_LETTERS, Orienter
from .sheet import Sheet, crop, fit, panel, window_of

__all__ = ["ORIGIN_COLOURS", "case_sheet", "write_qc", "QCResult"]

#: outline colours by origin (the Review dock uses the same)
ORIGIN_COLOURS = {"kept": "#4fc3f7", "added": "#ffb000", "removed": "#ff3dd6",
                  "lesion": "#4fc3f7"}
TILES_PER_PAGE = 40
CELL = 150       # pixels of one panel
GAP = 4
HEAD = 34        # pixels above the first row (page title, column titles)
LEFT = 92        # pixels left of the first column (row labels)
MIN_FOV_MM = 50.0
MIN_WIDTH = 960  # pixels: room for the page's heading


def _outlines(origin_pic, which=("kept", "added", "removed")) -> list:
    return [(origin_pic == ORIGIN_CODES[w], ORIGIN_COLOURS[w]) for w in which]


def _fov_half(les, orienter: Orienter, plane: str) -> tuple[int, int]:
    extent = max((s.stop - s.start) * sp for s, sp in
                 zip(les.bbox, orienter.geometry.spacing_zyx))
    fov = max(MIN_FOV_MM, 2.5 * extent)
    rs, cs = orienter.pixel_size(plane)
    return int(np.ceil(fov / 2 / rs)), int(np.ceil(fov / 2 / cs))


def _heading(case, oblique: bool) -> str:
    r = case.row
    c = case.changes.counts()
    head = (f"{case.name}    source {r.source or '?'}    status {r.status or '?'}    "
            f"+{c['added']} / −{c['removed']} lesions")
    if r.target_load_mm3 is not None:
        head += (f"    load: target {r.target_load_mm3 / 1000:.2f} ml, achieved "
                 f"{(r.achieved_load_mm3 or 0) / 1000:.2f} ml")
    if oblique:
        head += "    (oblique file: shown along the nearest anatomical axes)"
    if case.source is None and case.source_note:
        head += f"    [{case.source_note}]"
    return head


def case_sheet(case, channel: int = 0) -> Sheet | None:
    """The QC page of one loaded case (:class:`~.index.LoadedCase`), or None when
    nothing was added or removed."""
    lesions = case.changes.of("added") + case.changes.of("removed")
    if not lesions:
        return None
    o = Orienter(case.result.geometry)
    shape = case.result.labels.shape
    res = o.array(case.result.channels[min(channel, case.result.n_channels - 1)])
    src = None if case.source is None else o.array(
        case.source.channels[min(channel, case.source.n_channels - 1)])
    origin = o.array(case.changes.origin)
    window = window_of(res)
    planes = ("axial", "coronal", "sagittal") if res.ndim == 3 else ("axial",)
    ncol = 1 + 2 * len(planes)
    sheet = Sheet(max(LEFT + ncol * (CELL + GAP), MIN_WIDTH),
                  HEAD + 14 + len(lesions) * (CELL + GAP))
    sheet.text(6, 4, _heading(case, o.oblique), size=8.5)
    titles = ["result, axial"] + [f"{w}, {p}" for w in ("source", "result") for p in planes]
    for k, title in enumerate(titles):
        sheet.text(LEFT + k * (CELL + GAP) + CELL / 2, HEAD - 2, title, size=7.5, ha="center",
                   va="bottom")
    for r, les in enumerate(lesions):
        top = HEAD + 8 + r * (CELL + GAP)
        p = o.point(les.centroid, shape)
        label = f"{les.origin} #{r + 1}\n{les.volume_mm3:.0f} mm³"
        if les.donor:
            label += f"\ndonor\n{les.donor}"
        if les.note:
            label += "\n(tiny)" if les.voxels < 3 else "\n(merged?)"
        sheet.text(4, top + 4, label, size=7, colour=ORIGIN_COLOURS[les.origin])
        # context: the whole axial slice of the result, the crop marked
        pic = o.plane(res, "axial", p)
        size = fit(pic.shape, o.pixel_size("axial"), (CELL, CELL))
        img = panel(pic, window, size, _outlines(o.plane(origin, "axial", p), (les.origin,)))
        t, lft = sheet.put(img, top, LEFT, (CELL, CELL))
        centre = o.plane_point("axial", p, res.shape)
        half = _fov_half(les, o, "axial")
        sy, sx = size[0] / pic.shape[0], size[1] / pic.shape[1]
        r0 = max(int(t + (centre[0] - half[0]) * sy), t)
        c0 = max(int(lft + (centre[1] - half[1]) * sx), lft)
        r1 = min(int(t + (centre[0] + half[0] + 1) * sy), t + size[0] - 1)
        c1 = min(int(lft + (centre[1] + half[1] + 1) * sx), lft + size[1] - 1)
        sheet.rect(r0, c0, r1 - r0, c1 - c0, "#ffe680")  # the zoomed region, on the slice
        sheet.letters(top, LEFT, CELL, CELL, EDGE_LETTERS["axial"], size=6)
        for k, plane in enumerate(planes):
            centre = o.plane_point(plane, p, res.shape)
            half = _fov_half(les, o, plane)
            opic = crop(o.plane(origin, plane, p).astype(np.float32), centre, half)
            for j, vol in enumerate((src, res)):
                left = LEFT + (1 + k + j * len(planes)) * (CELL + GAP)
                if vol is None:
                    sheet.text(left + CELL / 2, top + CELL / 2, "source\nnot available",
                               size=7, ha="center", va="center")
                    continue
                draw = _outlines(opic) if (j == 0 or src is None) else ()
                sheet.put(panel(crop(o.plane(vol, plane, p), centre, half), window,
                                (CELL, CELL), draw), top, left)
                sheet.letters(top, left, CELL, CELL, EDGE_LETTERS[plane], size=6)
    return sheet


@dataclass
class _Tile:
    img: np.ndarray
    title: str


def _tile(case, channel: int) -> _Tile:
    o = Orienter(case.result.geometry)
    res = o.array(case.result.channels[min(channel, case.result.n_channels - 1)])
    changed = case.changes.of("added") + case.changes.of("removed") or case.changes.lesions
    if changed:
        p = o.point(max(changed, key=lambda x: x.voxels).centroid, case.result.labels.shape)
    else:
        p = tuple((n - 1) / 2 for n in res.shape)
    pic = o.plane(res, "axial", p)
    size = fit(pic.shape, o.pixel_size("axial"), (CELL, CELL))
    img = panel(pic, window_of(res), size, _outlines(o.plane(o.array(case.changes.origin),
                                                             "axial", p)))
    r, c = case.row, case.changes.counts()
    title = f"{r.name}\n{r.status or r.kind}  +{c['added']} −{c['removed']}"
    if r.target_load_mm3 is not None:
        title += f"  {r.target_load_mm3 / 1000:.1f}→{(r.achieved_load_mm3 or 0) / 1000:.1f} ml"
    return _Tile(img, title)


def _overview_page(tiles: list, path: Path, page: int, hint: str) -> Path:
    ncol = min(8, len(tiles))
    nrow = int(np.ceil(len(tiles) / ncol))
    row_h = CELL + 30
    sheet = Sheet(max(8 + ncol * (CELL + GAP), MIN_WIDTH), 26 + nrow * row_h)
    sheet.text(6, 4, f"overview {page}{hint}: outlines amber = added, magenta = removed (on "
               "the result, where inpainting happened), blue = kept", size=8.5)
    for i, t in enumerate(tiles):
        top, left = 26 + (i // ncol) * row_h, 6 + (i % ncol) * (CELL + GAP)
        sheet.text(left + CELL / 2, top, t.title, size=6.8, ha="center")
        sheet.put(t.img, top + 26, left, (CELL, CELL))
        sheet.letters(top + 26, left, CELL, CELL, EDGE_LETTERS["axial"], size=6)
    return sheet.save(path)


@dataclass
class QCResult:
    """What ``lesionmix qc`` wrote and what it could not read."""

    folder: Path
    pages: list = field(default_factory=list)
    overview: list = field(default_factory=list)
    problems: list = field(default_factory=list)


def write_qc(review, out_dir=None, cases=None, channel: int = 0, overwrite: bool = False,
             progress=None) -> QCResult:
    """Write the QC pictures of ``review`` (a :class:`~.index.ReviewDataset`).

    Parameters
    ----------
    out_dir : path-like, optional
        Default ``<dataset>/qc``.
    cases : list of str, optional
        Default: every synthesised case (every case when the dataset has none).
    channel : int
        Image channel to draw.
    overwrite : bool
        Replace existing PNGs; otherwise a folder holding PNGs is refused.
    progress : callable(done, total), optional

    Raises
    ------
    FileExistsError
        ``out_dir`` holds PNGs and ``overwrite`` is off (nothing written).
    """
    folder = Path(out_dir) if out_dir is not None else review.root / "qc"
    if folder.is_dir() and any(folder.glob("*.png")) and not overwrite:
        raise FileExistsError(f"{folder}: already holds QC pictures; pass --overwrite to "
                              "replace them")
    if cases is None:
        synth = [r.name for r in review.rows if r.kind == "synthesised"]
        cases = synth or review.names
    folder.mkdir(parents=True, exist_ok=True)
    out = QCResult(folder)
    tiles: list = []
    n_pages = int(np.ceil(len(cases) / TILES_PER_PAGE))
    hint = f" of {n_pages}" if n_pages > 1 else ""
    for i, name in enumerate(cases):
        try:
            case = review.load(name)
        except Exception as exc:  # noqa: BLE001 - one bad case never stops the pictures
            out.problems.append(f"{name}: {exc}")
            continue
        sheet = case_sheet(case, channel)
        if sheet is not None:
            out.pages.append(sheet.save(folder / f"{name}.png"))
        tiles.append(_tile(case, channel))
        del case, sheet
        if len(tiles) == TILES_PER_PAGE:
            _flush(tiles, folder, out, hint)
        if progress is not None:
            progress(i + 1, len(cases))
    if tiles:
        _flush(tiles, folder, out, hint)
    return out


def _flush(tiles: list, folder: Path, out: QCResult, hint: str) -> None:
    page = len(out.overview) + 1
    path = folder / ("overview.png" if page == 1 else f"overview_{page:03d}.png")
    out.overview.append(_overview_page(tiles, path, page, hint))
    tiles.clear()
