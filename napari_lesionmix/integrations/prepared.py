"""What the training-time transforms share: the lesion bank, the likelihood map, the
reference loads and the recipe, built once (``lesionmix prepare``) and opened lazily in
every data-loader worker.

A prepared folder::

    OUT/
      prepared.json          recipe (lesion classes resolved), reference loads, one record
                             per training case (load, intensity statistics, allowed voxels,
                             grid), notices; written last: a folder without it is unfinished
      bank/                  the lesion bank as flat arrays that workers map read-only
                             (core.bank_files)
      likelihood.nii.gz      the likelihood map (+ likelihood.align.npz when cases were
                             registered to be in one space)
      maps/<case>.npy        optional: the map read on each case's own grid (float32), so a
                             patch of that case reads its map by slicing

Nothing here imports torch: the integrations (``torchio``, ``monai``, ``nnunet``) do.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..core.bank_files import load_bank_folder, save_bank_folder
from ..core.geometry import Geometry
from ..core.io_utils import atomic_path, atomic_write_text
from ..core.lesions import LesionBank, placement_region
from ..core.likelihood import LikelihoodMap
from ..core.recipe import Recipe

__all__ = ["PREPARED_FILE", "PreparedData", "PrepareError", "case_record", "write_prepared"]

PREPARED_FILE = "prepared.json"
BANK_DIR = "bank"
MAP_FILE = "likelihood.nii.gz"
MAPS_DIR = "maps"
_VERSION = 1
_OURS = (PREPARED_FILE, BANK_DIR, MAP_FILE, "likelihood.align.npz", MAPS_DIR)


class PrepareError(ValueError):
    """A prepared folder is missing, unfinished or unreadable; the message names it."""


def case_record(case, organ_label=None) -> dict:
    """What the online path needs to know of a training case it may see again: its
    intensity statistics and allowed region measured on the whole case (a patch of it
    is measured against these), its grid and its voxel volume."""
    allowed = placement_region(case, organ_label)
    return {"stats": case.intensity_stats(allowed).tolist(),
            "allowed_voxels": int(np.count_nonzero(allowed)),
            "voxel_volume": float(case.geometry.voxel_volume),
            "shape": [int(n) for n in case.spatial_shape],
            "geometry": case.geometry.to_dict(),
            "channels": int(case.n_channels)}


def write_prepared(source, recipe: Recipe, out: str | Path, *, case_maps: bool = False,
                   overwrite: bool = False, skip_bad: bool = False,
                   progress: Callable[[int, int], None] | None = None,
                   description: str = "") -> PreparedData:
    """Build the bank, the map and the reference loads of ``source`` in one pass and
    write them to ``out``.

    Parameters
    ----------
    source : Dataset or a source like it
        Anything :func:`napari_lesionmix.batch.prepare.prepare` reads (``labels``,
        ``iter_valid``).
    recipe : Recipe
    out : path-like
        The folder. Other files in it are left alone.
    case_maps : bool
        Also write the map read on each case's grid (``maps/<case>.npy``), read again
        case by case: what makes a patch's map a slice.
    overwrite : bool
        Replace a prepared folder already in ``out`` (else :class:`FileExistsError`).
    skip_bad : bool
        Go on without bad cases (listed in ``prepared.json``); else :class:`PrepareError`
        naming them, and nothing is written.
    progress : callable(done, total), optional
    description : str
        What the source is, for ``prepared.json``.

    Returns
    -------
    PreparedData
        The folder, opened.
    """
    from ..batch.prepare import prepare

    out = Path(out)
    if (out / PREPARED_FILE).exists() and not overwrite:
        raise FileExistsError(f"{out}: already holds a prepared folder ({PREPARED_FILE}); "
                              "pass overwrite (--overwrite) to replace it")
    records: dict = {}

    def measure(src, case):
        records[src.name] = case_record(case, recipe.organ_label)

    setup = prepare(source, recipe, progress=progress, each=measure)
    if setup.bad and not skip_bad:
        raise PrepareError("bad case(s), nothing written: " + "; ".join(
            f"{b.name}: {b.problem}" for b in setup.bad))
    if not setup.good:
        raise PrepareError(f"{description or out}: no valid case to prepare from")
    out.mkdir(parents=True, exist_ok=True)
    for name in _OURS:  # the folder is unfinished until prepared.json is written again
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    save_bank_folder(setup.bank, out / BANK_DIR)
    if setup.lmap is not None:
        setup.lmap.save(out / MAP_FILE, overwrite=True)
        if case_maps:
            for src, case in source.iter_valid([]):
                if src.name in records:
                    with atomic_path(out / MAPS_DIR / f"{src.name}.npy") as tmp:
                        with open(tmp, "wb") as fh:
                            np.save(fh, setup.lmap.for_case(case).prob.astype(np.float32))
    for name, info in setup.loads.items():
        records[name].update(load_mm3=info["load_mm3"], lesions=info["lesions"])
    from .. import __version__
    header = {"version": _VERSION, "napari_lesionmix": __version__,
              "source": description, "recipe": setup.recipe.to_dict(),
              "reference_loads_mm3": setup.reference_loads(), "cases": records,
              "channels": next(iter(records.values()))["channels"],
              "lesions": len(setup.bank), "map": setup.lmap is not None,
              "case_maps": bool(case_maps and setup.lmap is not None),
              "notices": list(setup.notices),
              "bad": [b.to_dict() for b in setup.bad]}
    atomic_write_text(out / PREPARED_FILE, json.dumps(header, indent=1) + "\n")
    return PreparedData.open(out)


class PreparedData:
    """A prepared bank, map, reference loads and recipe, opened lazily.

    Built from a folder (:meth:`open`), it pickles as the folder's path and each process
    maps the bank and reads the map on first use, so data-loader workers share the
    bank's pages instead of each holding a copy. Built from objects in memory
    (:meth:`from_objects`), it pickles whole (each worker then gets its own copy).

    Attributes
    ----------
    recipe : Recipe
    reference : list of float
        Reference loads (mm³) of the load distribution.
    cases : dict
        Case name → :func:`case_record` (with ``load_mm3``), for the cases it was built from.
    folder : Path or None
    notices : list of str
        What the build had to do (cases registered to be in one space, or on their own map).
    """

    def __init__(self, recipe: Recipe, reference, cases: dict | None = None, *,
                 folder: Path | None = None, bank: LesionBank | None = None,
                 lmap: LikelihoodMap | None = None, has_map: bool = True,
                 case_maps: bool = False, channels: int | None = None, notices=()):
        self.recipe = recipe
        self.notices = list(notices)
        self.reference = [float(v) for v in reference]
        self.cases = dict(cases or {})
        self.folder = folder
        self.channels = channels
        self._bank, self._lmap = bank, lmap
        self._has_map, self._case_maps = has_map, case_maps
        self._lock = threading.Lock()
        self._maps: dict = {}

    # ------------------------------------------------------------------ building
    @classmethod
    def open(cls, folder: str | Path) -> PreparedData:
        """Open a folder written by :func:`write_prepared` (reads only ``prepared.json``)."""
        folder = Path(folder).expanduser().resolve()
        path = folder / PREPARED_FILE
        if not path.is_file():
            raise PrepareError(f"{folder}: not a prepared folder (no {PREPARED_FILE}; make one "
                               "with: lesionmix prepare DATASET OUT)")
        try:
            header = json.loads(path.read_text(encoding="utf-8"))
            if header.get("version") != _VERSION:
                raise ValueError(f"unknown version {header.get('version')!r}")
            recipe = Recipe.from_dict(header["recipe"])
            return cls(recipe, header["reference_loads_mm3"], header["cases"], folder=folder,
                       has_map=bool(header["map"]), case_maps=bool(header.get("case_maps")),
                       channels=header.get("channels"), notices=header.get("notices", ()))
        except (ValueError, KeyError, TypeError) as exc:
            raise PrepareError(f"{path}: not a readable prepared file ({exc})") from None

    @classmethod
    def from_objects(cls, bank: LesionBank, lmap: LikelihoodMap | None, recipe: Recipe,
                     reference_loads=None) -> PreparedData:
        """Bank, map and recipe held in memory (e.g. built in a notebook).

        ``reference_loads`` default to the bank's per-case loads.
        """
        if reference_loads is None:
            reference_loads = list(bank.loads_by_case().values())
        channels = int(bank[0].image.shape[0]) if len(bank) else None
        return cls(recipe, reference_loads, bank=bank, lmap=lmap, has_map=lmap is not None,
                   channels=channels)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_lock")
        state["_maps"] = {}
        if self.folder is not None:  # workers open the folder themselves
            state["_bank"] = state["_lmap"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lazy parts
    @property
    def bank(self) -> LesionBank:
        """The lesion bank (mapped from the folder on first use in this process)."""
        if self._bank is None:
            with self._lock:
                if self._bank is None:
                    self._bank = load_bank_folder(self.folder / BANK_DIR)
        return self._bank

    @property
    def lmap(self) -> LikelihoodMap | None:
        """The likelihood map (None: uniform placement over each sample's allowed region)."""
        if self._lmap is None and self._has_map and self.folder is not None:
            with self._lock:
                if self._lmap is None:
                    self._lmap = LikelihoodMap.load(self.folder / MAP_FILE)
        return self._lmap

    def case_map(self, name: str | None) -> np.ndarray | None:
        """The map on case ``name``'s own grid (mapped read-only), or None when it was
        not written."""
        if not self._case_maps or name not in self.cases or self.folder is None:
            return None
        if name not in self._maps:
            path = self.folder / MAPS_DIR / f"{name}.npy"
            self._maps[name] = np.load(path, mmap_mode="r") if path.is_file() else None
        return self._maps[name]

    def case_geometry(self, name: str | None) -> Geometry | None:
        """The grid of a case the folder was built from (None for another)."""
        rec = self.cases.get(name) if name else None
        return None if rec is None else Geometry.from_dict(rec["geometry"])

    def describe(self) -> str:
        where = str(self.folder) if self.folder is not None else "objects in memory"
        return (f"{where}: {len(self.cases) or 'unknown number of'} case(s), "
                f"{len(self.bank)} lesion(s), map {'yes' if self._has_map else 'none (uniform)'}")
