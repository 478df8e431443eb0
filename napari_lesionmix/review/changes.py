"""What changed in a synthesised case: lesions by origin and the difference map.

A lesion of the result is **added** when its voxels were not lesion in the source (the
populate operation that made it gives the donor lesion and the transform parameters),
else **kept**. A lesion of the source is **removed** when inpainting took it away (the
inpaint operation gives where). Without the source, the provenance alone decides: a
result lesion inside a populate operation's box, nearest its centre, is the added one.
Without either, every lesion of the case is listed with origin ``lesion``.

Examples
--------
>>> ch = lesion_changes(result, source, provenance, classes=[1])   # doctest: +SKIP
>>> [(l.origin, l.donor) for l in ch.lesions][:2]                   # doctest: +SKIP
[('kept', None), ('added', 'brain03:1:19')]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..core.case import Case
from ..core.lesions import Lesion, find_lesions
from ..core.provenance import Provenance

__all__ = ["ORIGIN_CODES", "LesionRow", "Changes", "lesion_changes", "difference_map",
           "resample_case", "describe_params"]

#: values of :attr:`Changes.origin`
ORIGIN_CODES = {"kept": 1, "added": 2, "removed": 3, "lesion": 4}


@dataclass
class LesionRow:
    """One lesion of the lesion table.

    Attributes
    ----------
    origin : {"kept", "added", "removed", "lesion"}
    label : int
        Its class.
    voxels, volume_mm3 : int, float
    centroid : tuple of float
        Array index (z, y, x) on the case's grid.
    centroid_mm : tuple of float
        Physical position (x, y, z), ITK's LPS, mm.
    bbox : tuple of slice
    donor : str or None
        Bank key ``case:class:component`` of the donor lesion (added lesions).
    donor_case : str or None
    params : dict or None
        The transform parameters drawn for it (added lesions).
    operation : int or None
        Index of the operation in the provenance.
    note : str
        e.g. why an added spot is not counted as a lesion.
    seed : tuple of int or None
        One voxel of the lesion (of the source for a removed one): with ``bbox`` it
        finds the lesion's voxels again.
    """

    origin: str
    label: int
    voxels: int
    volume_mm3: float
    centroid: tuple
    centroid_mm: tuple
    bbox: tuple
    donor: str | None = None
    donor_case: str | None = None
    params: dict | None = None
    operation: int | None = None
    note: str = ""
    seed: tuple | None = None

    def describe(self) -> str:
        """One line for a table's tooltip or a picture's title."""
        head = f"{self.origin} lesion, class {self.label}, {self.volume_mm3:.0f} mm³ " \
               f"({self.voxels} voxel{'' if self.voxels == 1 else 's'})"
        if self.origin == "added" and self.donor:
            case, _, rest = self.donor.partition(":")
            head += f"; donor {case} lesion {rest.partition(':')[2] or rest}"
            if self.params:
                head += "; " + describe_params(self.params)
        elif self.origin == "removed":
            head += "; inpainted"
        return head + (f" ({self.note})" if self.note else "")


def describe_params(params: dict) -> str:
    """Transform parameters in words, e.g. ``flip y; rotate 84° about y; scale 0.55``."""
    axes = "zyx" if len(params.get("flip", ())) == 3 else "yx"
    parts = []
    flips = [a for a, f in zip(axes, params.get("flip", ())) if f]
    if flips:
        parts.append("flip " + ",".join(flips))
    rot = params.get("rotate", ())
    if len(rot) == 1 and rot[0]:
        parts.append(f"rotate {rot[0]:.0f}°")
    elif len(rot) == 3:
        turns = [f"{r:.0f}° about {a}" for a, r in zip("zyx", rot) if r]
        if turns:
            parts.append("rotate " + ", ".join(turns))
    if "scale" in params:
        parts.append(f"scale {params['scale']:.2f}")
    if params.get("elastic_sigma"):
        parts.append(f"elastic σ {params['elastic_sigma']:.1f}")
    if "brightness" in params:
        parts.append(f"brightness {params['brightness']:.2f}")
    if params.get("noise_std"):
        parts.append(f"noise {params['noise_std']:.3f}")
    return "; ".join(parts)


@dataclass
class Changes:
    """Lesions of a case by origin.

    Attributes
    ----------
    lesions : list of LesionRow
        Result lesions (kept, added) in label order, then removed ones.
    origin : ndarray of uint8
        Per voxel: 0 none, then :data:`ORIGIN_CODES` (removed voxels are the source's).
    load_mm3 : float
        The result's lesion load (every voxel of a lesion class).
    """

    lesions: list = field(default_factory=list)
    origin: np.ndarray | None = None
    load_mm3: float = 0.0

    def counts(self) -> dict:
        out = {"kept": 0, "added": 0, "removed": 0}
        for les in self.lesions:
            out[les.origin] = out.get(les.origin, 0) + 1
        return out

    def of(self, origin: str) -> list:
        return [les for les in self.lesions if les.origin == origin]


def _row(les: Lesion, origin: str, geometry) -> LesionRow:
    mm = tuple(float(v) for v in geometry.index_to_physical(les.centroid))
    return LesionRow(origin, les.label, les.voxels, les.volume_mm3, tuple(les.centroid), mm,
                     tuple(les.bbox), seed=tuple(int(v) for v in les.seed))


def _inside(bbox, box) -> bool:
    return all(b.start >= lo and b.stop <= hi for b, (lo, hi) in zip(bbox, box))


def _match_populate(rows: list, prov: Provenance | None) -> list:
    """Pair each populate operation with the added-candidate lesion nearest its centre
    inside its box; returns the rows that got an operation."""
    if prov is None:
        return []
    pairs = []
    for i, op in enumerate(prov.operations):
        if not (op.accepted and op.kind == "populate" and op.box and op.center is not None):
            continue
        for k, row in enumerate(rows):
            if _inside(row.bbox, op.box):
                d = float(np.sum((np.array(row.centroid) - np.array(op.center)) ** 2))
                pairs.append((d, i, k))
    used_ops, used_rows, matched = set(), set(), []
    for _, i, k in sorted(pairs):
        if i in used_ops or k in used_rows:
            continue
        op, row = prov.operations[i], rows[k]
        row.operation, row.donor, row.params = i, op.entry, op.params
        row.donor_case = (prov.bank_sources.get(op.entry) or {}).get("case") \
            or (op.entry or "").split(":")[0] or None
        used_ops.add(i)
        used_rows.add(k)
        matched.append(row)
    return matched


def lesion_changes(result: Case, source: Case | None, prov: Provenance | None, classes,
                   min_voxels: int = 3, connectivity: str = "full") -> Changes:
    """Lesions of ``result`` by origin, against ``source`` (same grid) and the provenance.

    Parameters
    ----------
    result : Case
    source : Case or None
        On the result's grid (see :func:`resample_case`).
    prov : Provenance or None
    classes : sequence of int
        Lesion classes (the provenance's, when it records them, win).
    min_voxels, connectivity
        What counts as a lesion (the recipe's).
    """
    if prov is not None and prov.lesion_classes:
        classes = prov.lesion_classes
    classes = [int(c) for c in classes]
    geom = result.geometry
    res_mask = np.isin(result.labels, classes)
    origin = np.zeros(result.labels.shape, np.uint8)
    found = find_lesions(result.labels, classes, geom.spacing_zyx, min_voxels, connectivity,
                         result.name)
    rows = [_row(les, "lesion", geom) for les in found]
    out = Changes(origin=origin, load_mm3=float(res_mask.sum() * geom.voxel_volume))
    if source is None and prov is None:
        origin[res_mask] = ORIGIN_CODES["lesion"]
        out.lesions = rows
        return out
    if source is not None:
        src_mask = np.isin(source.labels, classes)
        added_vox = res_mask & ~src_mask
        for row in rows:
            new = int(np.count_nonzero(added_vox[row.bbox] & (result.labels[row.bbox] == row.label)))
            row.origin = "added" if new * 2 > row.voxels else "kept"
        _match_populate([r for r in rows if r.origin == "added"], prov)
        origin[res_mask & src_mask] = ORIGIN_CODES["kept"]
        origin[added_vox] = ORIGIN_CODES["added"]
        origin[src_mask & ~res_mask] = ORIGIN_CODES["removed"]
    else:
        for row in _match_populate(rows, prov):
            row.origin = "added"
        for row in rows:
            if row.origin == "lesion":
                row.origin = "kept"
            origin[row.bbox][np.isin(result.labels[row.bbox], classes)] = ORIGIN_CODES[row.origin]
    rows += _unmatched_populate(rows, prov, geom, min_voxels)
    removed = _removed_rows(result, source, prov, classes, min_voxels, connectivity, origin)
    out.lesions = rows + removed
    return out


def _unmatched_populate(rows, prov, geom, min_voxels) -> list:
    """Rows for populate operations that left no lesion of ``min_voxels`` (a spot of a
    voxel or two still counts in the load and trains the model: the reviewer sees it)."""
    if prov is None:
        return []
    done = {r.operation for r in rows if r.operation is not None}
    out = []
    for i, op in enumerate(prov.operations):
        if op.accepted and op.kind == "populate" and i not in done and op.center is not None:
            centre = tuple(float(c) for c in op.center)
            mm = tuple(float(v) for v in geom.index_to_physical(centre))
            box = tuple(slice(a, b) for a, b in (op.box or [[c, c + 1] for c in op.center]))
            label = int(prov.lesion_classes[0]) if prov.lesion_classes else 1
            row = LesionRow("added", label, int(op.voxels), op.voxels * geom.voxel_volume,
                            centre, mm, box, op.entry, None, op.params, i,
                            note=f"{op.voxels} voxel(s): below min_voxels {min_voxels}, not "
                                 "counted as a lesion" if op.voxels < min_voxels else
                                 "not found as a separate lesion (merged with another?)")
            row.donor_case = (op.entry or "").split(":")[0] or None
            out.append(row)
    return out


def _removed_rows(result, source, prov, classes, min_voxels, connectivity, origin) -> list:
    geom = result.geometry
    rows = []
    if prov is not None:
        for i, op in enumerate(prov.operations):
            if op.accepted and op.kind == "inpaint" and op.lesion:
                row = _row(Lesion.from_dict(op.lesion), "removed", geom)
                row.operation = i
                rows.append(row)
        return rows  # without the source, the removed voxels are not known: rows only
    gone = np.where(origin == ORIGIN_CODES["removed"], source.labels, 0)
    return [_row(les, "removed", geom) for les in
            find_lesions(gone, classes, geom.spacing_zyx, min_voxels, connectivity, source.name)]


def difference_map(result: Case, source: Case) -> np.ndarray:
    """``result - source`` per channel (float32, ``(C, *shape)``), on the result's grid."""
    n = min(result.n_channels, source.n_channels)
    return (result.channels[:n].astype(np.float32) - source.channels[:n].astype(np.float32))


def resample_case(case: Case, onto: Case) -> Case:
    """``case`` on the grid of ``onto`` through physical space: linear for the
    channels, nearest neighbour for the labels; outside the case reads 0."""

    def to_grid(array, linear):
        img = sitk.GetImageFromArray(array)
        case.geometry.apply_to(img)
        ref = sitk.GetImageFromArray(np.zeros(onto.labels.shape, np.uint8))
        onto.geometry.apply_to(ref)
        interp = sitk.sitkLinear if linear else sitk.sitkNearestNeighbor
        return sitk.GetArrayFromImage(sitk.Resample(img, ref, sitk.Transform(), interp, 0.0))

    channels = np.stack([to_grid(c.astype(np.float32), True) for c in case.channels])
    labels = to_grid(case.labels, False).astype(case.labels.dtype)
    return Case(channels, labels, onto.geometry, name=case.name,
                channel_names=list(case.channel_names), image_paths=list(case.image_paths),
                label_path=case.label_path, image_dtypes=list(case.image_dtypes))
