"""Lesions: connected components per lesion class, their measures, and the lesion bank.

A lesion is a connected component of one lesion class (full connectivity by default:
26 in 3D, 8 in 2D) with at least ``min_voxels`` voxels. Labelling is the one
full-volume pass per case; everything after works inside each lesion's bounding box.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .appearance import grain_size, interior, residual, surroundings
from .io_utils import atomic_path, parse_json


class BankError(ValueError):
    """The lesion bank is empty or a bank file is unreadable."""


def structure(ndim: int, connectivity: str = "full") -> np.ndarray:
    """Structuring element: ``full`` (26/8-connected) or ``face`` (6/4-connected)."""
    return ndi.generate_binary_structure(ndim, ndim if connectivity == "full" else 1)


def lesion_classes_of(labels: np.ndarray, lesion_classes=None, organ_label=None) -> list[int]:
    """The lesion classes to use: the given ones, or every non-zero label but the organ."""
    if lesion_classes is not None:
        return sorted(int(c) for c in lesion_classes)
    values = np.unique(labels)
    return [int(v) for v in values if v != 0 and v != organ_label]


@dataclass
class Lesion:
    """One lesion of a case.

    Attributes
    ----------
    label : int
        Its lesion class.
    component : int
        1-based id within (case, class), in scan order of the labelling.
    voxels, volume_mm3 : int, float
        Size in voxels and in mm³ (mm² in 2D).
    centroid : tuple of float
        Centre of mass, array index (z, y, x).
    bbox : tuple of slice
        Tight bounding box in the case's array.
    seed : tuple of int
        One voxel inside the lesion (the first in C order): identifies it for replay.
    case_name : str
        The case it belongs to.
    """

    label: int
    component: int
    voxels: int
    volume_mm3: float
    centroid: tuple
    bbox: tuple
    seed: tuple
    case_name: str = ""

    @property
    def volume_ml(self) -> float:
        """Volume in millilitres."""
        return self.volume_mm3 / 1000.0

    def to_dict(self) -> dict:
        """JSON-ready description."""
        return {
            "label": self.label, "component": self.component, "voxels": self.voxels,
            "volume_mm3": self.volume_mm3, "centroid": [float(c) for c in self.centroid],
            "bbox": [[s.start, s.stop] for s in self.bbox], "seed": list(self.seed),
            "case_name": self.case_name,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Lesion:
        """Inverse of :meth:`to_dict`."""
        return cls(int(d["label"]), int(d["component"]), int(d["voxels"]),
                   float(d["volume_mm3"]), tuple(d["centroid"]),
                   tuple(slice(int(a), int(b)) for a, b in d["bbox"]),
                   tuple(int(s) for s in d["seed"]), d.get("case_name", ""))


def find_lesions(labels: np.ndarray, lesion_classes, spacing_zyx=None, min_voxels: int = 3,
                 connectivity: str = "full", case_name: str = "") -> list[Lesion]:
    """Connected components of each lesion class, largest measures included.

    Parameters
    ----------
    labels : ndarray of int
        The label map (array order).
    lesion_classes : sequence of int
        Label values that are lesions.
    spacing_zyx : sequence of float, optional
        Voxel size in array order (default 1).
    min_voxels : int
        Smaller components are not lesions.
    connectivity : {"full", "face"}
        26/8- or 6/4-connectivity.
    case_name : str
        Recorded in each lesion.

    Returns
    -------
    list of Lesion
        Ordered by class, then component id.

    Examples
    --------
    >>> lab = np.zeros((8, 8), np.uint8); lab[1:3, 1:3] = 1; lab[5:8, 5:8] = 1
    >>> [l.voxels for l in find_lesions(lab, [1])]
    [4, 9]
    """
    spacing = np.ones(labels.ndim) if spacing_zyx is None else np.asarray(spacing_zyx, float)
    voxel_volume = float(np.prod(spacing))
    st = structure(labels.ndim, connectivity)
    out: list[Lesion] = []
    for cls in lesion_classes:
        binary = labels == cls
        crop = bounding_box(binary)
        if crop is None:
            continue
        comp, n = ndi.label(binary[crop], structure=st)  # only where the class occurs
        slices = ndi.find_objects(comp)
        sizes = np.bincount(comp.ravel(), minlength=n + 1)  # one pass; the rest per box
        for i in range(1, n + 1):
            if sizes[i] < min_voxels:
                continue
            local_box = slices[i - 1]
            box = tuple(slice(b.start + c.start, b.stop + c.start)
                        for b, c in zip(local_box, crop))
            local = comp[local_box] == i
            first = np.unravel_index(int(np.argmax(local)), local.shape)
            seed = tuple(int(s.start + f) for s, f in zip(box, first))
            # the mean voxel index: integer sums are exact, so this is center_of_mass's
            idx = np.nonzero(local)
            centroid = tuple(float((ix.sum(dtype=np.int64) + s.start * ix.size) / ix.size)
                             for s, ix in zip(box, idx))
            out.append(Lesion(int(cls), int(i), int(sizes[i]), float(sizes[i] * voxel_volume),
                              centroid, box, seed, case_name))
    return out


def bounding_box(mask: np.ndarray) -> tuple | None:
    """The smallest box (slices) holding every True voxel of ``mask``; None if there is none."""
    box = []
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(np.any(mask, axis=others))
        if hit.size == 0:
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def lesion_mask(labels: np.ndarray, lesion: Lesion, connectivity: str = "full",
                pad: int = 0) -> tuple[np.ndarray, tuple]:
    """The lesion's own voxels inside its bounding box grown by ``pad``.

    The component is found again by labelling only the box around it and keeping the
    component that holds ``lesion.seed``, so this costs a patch, not a volume.

    Returns
    -------
    mask : ndarray of bool
        The component inside ``slices``.
    slices : tuple of slice
        The box (clipped to the array).
    """
    box = tuple(slice(max(s.start - pad, 0), min(s.stop + pad, n))
                for s, n in zip(lesion.bbox, labels.shape))
    binary = labels[box] == lesion.label
    local_seed = tuple(p - s.start for p, s in zip(lesion.seed, box))
    if not binary[local_seed]:
        return np.zeros(binary.shape, bool), box
    comp, _ = ndi.label(binary, structure=structure(labels.ndim, connectivity))
    return comp == comp[local_seed], box


def in_classes(labels: np.ndarray, classes) -> np.ndarray:
    """``np.isin(labels, classes)`` without its integer copy of the labels: a comparison per
    class for a few classes of an integer label map (a boolean map, not 8 bytes a voxel).

    Examples
    --------
    >>> in_classes(np.array([0, 1, 2, 3], np.uint8), [1, 3]).tolist()
    [False, True, False, True]
    """
    classes = [int(c) for c in classes]
    if labels.dtype.kind not in "iu" or not 0 < len(classes) <= 4:
        return np.isin(labels, classes)
    out = labels == classes[0]
    for c in classes[1:]:
        out |= labels == c
    return out


def lesion_load(labels: np.ndarray, lesion_classes, spacing_zyx=None) -> tuple[float, int]:
    """Total lesion volume of a label map: (mm³, voxels).

    Every voxel of a lesion class counts, whatever its component's size.
    """
    if not lesion_classes:
        return 0.0, 0
    voxels = int(np.count_nonzero(in_classes(labels, lesion_classes)))
    spacing = np.ones(labels.ndim) if spacing_zyx is None else np.asarray(spacing_zyx, float)
    return float(voxels * np.prod(spacing)), voxels


@dataclass
class BankEntry:
    """A lesion cut out of its case: image and mask patches and the source's statistics.

    Attributes
    ----------
    lesion : Lesion
    image : ndarray, float32, (C, *patch)
    mask : ndarray of bool, (*patch)
    stats : ndarray, (C, 2)
        Mean and std of the source case's foreground per channel.
    spacing_zyx : ndarray
        The source's voxel size in array order.
    source : dict
        ``case`` name, ``image_paths`` and ``label_path`` (for replay from files).
    context : ndarray of bool, (*patch), optional
        Voxels of the patch that are tissue of the source case (its allowed region, no
        other lesion): what the lesion's surroundings are measured on. ``None``: all.
    """

    lesion: Lesion
    image: np.ndarray
    mask: np.ndarray
    stats: np.ndarray
    spacing_zyx: np.ndarray
    source: dict = field(default_factory=dict)
    context: np.ndarray | None = None

    @property
    def level(self) -> np.ndarray | None:
        """The lesion's surroundings in its source case: median of the 2-voxel ring of
        tissue around it, per channel (raw intensities; computed once)."""
        cached = self.__dict__.get("_level", False)
        if cached is False:
            cached = self.__dict__["_level"] = surroundings(self.image, self.mask, self.context)
        return cached

    @property
    def appearance(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(contrast, grain, size)`` per channel: the mean inside the lesion minus
        :attr:`level`, its texture away from its edge, and its grain size per axis
        (computed once); None when the level is unknown."""
        cached = self.__dict__.get("_appearance", False)
        if cached is False:
            level = self.level
            if level is None:
                cached = None
            else:
                inner = interior(self.mask)
                resid = residual(self.image)
                cached = (self.image[:, self.mask].mean(axis=1) - level,
                          np.array([float(r[inner].std()) for r in resid]),
                          np.array([grain_size(r, inner) for r in resid]))
            self.__dict__["_appearance"] = cached
        return cached

    @property
    def key(self) -> str:
        """Stable identifier: ``case:class:component``."""
        return f"{self.lesion.case_name}:{self.lesion.label}:{self.lesion.component}"


def extract_entry(case, lesion: Lesion, margin: int = 3, connectivity: str = "full",
                  stats: np.ndarray | None = None, tissue: np.ndarray | None = None
                  ) -> BankEntry:
    """Cut one lesion out of ``case`` with ``margin`` voxels of context.

    ``tissue`` (bool, the case's shape): where the case has tissue lesions may sit in
    (its allowed region without lesions); kept for the patch as :attr:`BankEntry.context`.
    """
    mask, box = lesion_mask(case.labels, lesion, connectivity, pad=margin)
    image = case.channels[(slice(None),) + box].astype(np.float32, copy=True)
    if stats is None:
        stats = case.intensity_stats()
    return BankEntry(lesion, image, mask, np.asarray(stats, np.float64),
                     np.asarray(case.geometry.spacing_zyx, float),
                     {"case": case.name, "image_paths": list(case.image_paths or []),
                      "label_path": case.label_path},
                     None if tissue is None else tissue[box].copy())


class LesionBank:
    """Every lesion of a set of training cases, ready to be populated elsewhere.

    Examples
    --------
    >>> bank = LesionBank.from_cases(cases, lesion_classes=[1])  # doctest: +SKIP
    >>> entry = bank[bank.pick(np.random.default_rng(0))]        # doctest: +SKIP
    """

    def __init__(self, entries=None, connectivity: str = "full", margin: int = 3,
                 min_voxels: int = 3):
        self.entries: list[BankEntry] = list(entries or [])
        self.connectivity = connectivity
        self.margin = margin
        self.min_voxels = min_voxels
        self._index = {e.key: i for i, e in enumerate(self.entries)}
        self.case_loads: dict = {}  # every case added, lesion-free ones included (mm³)

    @classmethod
    def from_cases(cls, cases, lesion_classes=None, min_voxels: int = 3,
                   connectivity: str = "full", margin: int = 3, organ_label=None,
                   progress=None) -> LesionBank:
        """Extract every lesion of every case (one labelling pass per case)."""
        bank = cls(connectivity=connectivity, margin=margin, min_voxels=min_voxels)
        for i, case in enumerate(cases):
            bank.add_case(case, lesion_classes, organ_label=organ_label)
            if progress is not None:
                progress(i + 1, len(cases))
        return bank

    @classmethod
    def from_recipe(cls, cases, recipe, progress=None) -> LesionBank:
        """A bank with the recipe's classes, min size, connectivity and margin."""
        return cls.from_cases(cases, recipe.lesion_classes, recipe.min_voxels,
                              recipe.connectivity, recipe.populate.margin,
                              recipe.organ_label, progress)

    def add_case(self, case, lesion_classes=None, organ_label=None) -> int:
        """Add the lesions of one case; return how many were added."""
        classes = lesion_classes_of(case.labels, lesion_classes, organ_label)
        self.case_loads[case.name] = lesion_load(case.labels, classes,
                                                 case.geometry.spacing_zyx)[0]
        lesions = find_lesions(case.labels, classes, case.geometry.spacing_zyx,
                               self.min_voxels, self.connectivity, case.name)
        if not lesions:
            return 0
        allowed = placement_region(case, organ_label)
        stats = case.intensity_stats(allowed)
        tissue = allowed & ~in_classes(case.labels, classes)
        for lesion in lesions:
            entry = extract_entry(case, lesion, self.margin, self.connectivity, stats, tissue)
            self._index[entry.key] = len(self.entries)
            self.entries.append(entry)
        return len(lesions)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> BankEntry:
        return self.entries[i]

    def classes(self) -> list[int]:
        """The lesion classes of the bank's entries."""
        return sorted({int(e.lesion.label) for e in self.entries})

    def index_of(self, key: str) -> int:
        """Position of the entry with this :attr:`BankEntry.key`."""
        try:
            return self._index[key]
        except KeyError:
            raise BankError(f"lesion {key!r} is not in the bank") from None

    def pick(self, rng: np.random.Generator, mode: str = "uniform") -> int:
        """Draw one entry index: uniform over lesions, over classes then lesions, or by size."""
        n = len(self.entries)
        if n == 0:
            raise BankError("the lesion bank is empty: no training case has a lesion of the "
                            "chosen classes with at least min_voxels voxels")
        if mode == "uniform":
            return int(rng.integers(n))
        if mode == "class":
            labels = np.array([e.lesion.label for e in self.entries])
            classes = np.unique(labels)
            c = classes[int(rng.integers(len(classes)))]
            members = np.flatnonzero(labels == c)
            return int(members[int(rng.integers(len(members)))])
        if mode == "size":
            w = np.array([e.lesion.volume_mm3 for e in self.entries], float)
            cdf = np.cumsum(w / w.sum())
            return int(min(np.searchsorted(cdf, rng.random(), side="right"), n - 1))
        raise ValueError(f"unknown pick mode {mode!r}")

    def loads_by_case(self) -> dict:
        """Lesion load per source case (mm³): every case added, lesion-free ones too.

        A bank built from entries alone falls back to the sum of its lesions per case.
        """
        if self.case_loads:
            return dict(self.case_loads)
        out: dict = {}
        for e in self.entries:
            out[e.lesion.case_name] = out.get(e.lesion.case_name, 0.0) + e.lesion.volume_mm3
        return out

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> None:
        """Write the bank to one ``.npz`` file (atomically), for workers to load."""
        import json
        arrays = {}
        meta = []
        for i, e in enumerate(self.entries):
            arrays[f"image_{i}"] = e.image
            arrays[f"mask_{i}"] = e.mask
            if e.context is not None:
                arrays[f"context_{i}"] = e.context
            meta.append({"lesion": e.lesion.to_dict(), "stats": e.stats.tolist(),
                         "spacing_zyx": e.spacing_zyx.tolist(), "source": e.source})
        header = {"connectivity": self.connectivity, "margin": self.margin,
                  "min_voxels": self.min_voxels, "entries": meta,
                  "case_loads": self.case_loads}
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> LesionBank:
        """Read a bank written by :meth:`save`, or map a bank folder written by
        :func:`~napari_lesionmix.core.bank_files.save_bank_folder`."""
        if Path(path).is_dir():
            from .bank_files import load_bank_folder
            return load_bank_folder(path)
        try:
            with np.load(path) as z:
                header = parse_json(bytes(z["header"]).decode())
                entries = []
                for i, m in enumerate(header["entries"]):
                    context = z[f"context_{i}"] if f"context_{i}" in z.files else None
                    entries.append(BankEntry(Lesion.from_dict(m["lesion"]), z[f"image_{i}"],
                                             z[f"mask_{i}"], np.asarray(m["stats"]),
                                             np.asarray(m["spacing_zyx"]), m["source"],
                                             context))
        except (OSError, KeyError, ValueError) as exc:
            raise BankError(f"{path}: not a readable lesion bank ({exc})") from None
        bank = cls(entries, header["connectivity"], header["margin"], header["min_voxels"])
        bank.case_loads = dict(header.get("case_loads", {}))
        return bank


def placement_region(case, organ_label=None) -> np.ndarray:
    """Where lesions may go in ``case``: its placement mask, else the organ label, else
    the image foreground (non-zero voxels)."""
    if case.placement is not None:
        return case.placement
    if organ_label is not None:
        return case.labels == organ_label
    return case.foreground()
