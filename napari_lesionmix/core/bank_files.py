"""A lesion bank as a folder that many processes map into memory instead of copying.

:meth:`LesionBank.save` writes one ``.npz`` file, which every process that loads it
decompresses into its own memory. A training data loader runs several worker processes
that all need the same bank; this layout lets each of them map the same bytes read-only
(``numpy.load(..., mmap_mode="r")``), so the operating system keeps one copy in its page
cache whatever the number of workers:

``index.json``
    The bank's options, the per-case loads, and one record per lesion: the lesion, its
    source case's statistics, voxel size and files, where its patches lie in the flat
    arrays, and its surroundings and appearance (measured once, when the folder is
    written, so no worker measures them again).
``images.npy``
    Every lesion's image patch, float32, raveled and concatenated.
``masks.npy``, ``contexts.npy``
    Every lesion's mask and tissue (context) patch, bool, raveled and concatenated.

A lesion's arrays are views into the mapped files: reading them does not copy the bank.
The folder is written file by file under temporary names, ``index.json`` last, so a
folder without ``index.json`` is an unfinished one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .io_utils import atomic_path, atomic_write_text, parse_json
from .lesions import BankEntry, BankError, Lesion, LesionBank

__all__ = ["BANK_INDEX", "is_bank_folder", "load_bank_folder", "save_bank_folder"]

BANK_INDEX = "index.json"
_ARRAYS = {"image": "images.npy", "mask": "masks.npy", "context": "contexts.npy"}
_VERSION = 1


def is_bank_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder written by :func:`save_bank_folder`."""
    return (Path(path) / BANK_INDEX).is_file()


def _packed(value) -> dict | None:
    """An array as JSON that gives back the same dtype and bits."""
    if value is None:
        return None
    arr = np.asarray(value)
    return {"dtype": arr.dtype.str, "shape": list(arr.shape),
            "values": [float(v) for v in arr.ravel()]}


def _unpacked(d: dict | None) -> np.ndarray | None:
    if d is None:
        return None
    return np.array(d["values"], dtype=np.dtype(d["dtype"])).reshape(d["shape"])


def save_bank_folder(bank: LesionBank, folder: str | Path, overwrite: bool = False) -> Path:
    """Write ``bank`` as a folder of flat arrays that :func:`load_bank_folder` maps.

    Parameters
    ----------
    bank : LesionBank
    folder : path-like
        Created if needed.
    overwrite : bool
        Replace a bank folder already there (else :class:`FileExistsError`).

    Returns
    -------
    Path
        The folder.
    """
    folder = Path(folder)
    if (folder / BANK_INDEX).exists() and not overwrite:
        raise FileExistsError(f"{folder}: a lesion bank is already there; refusing to overwrite it")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BANK_INDEX).unlink(missing_ok=True)  # the folder is unfinished until the end
    records = []
    sizes = {"image": 0, "mask": 0, "context": 0}
    for e in bank.entries:
        rec = {"lesion": e.lesion.to_dict(), "stats": _packed(e.stats),
               "spacing_zyx": _packed(e.spacing_zyx), "source": e.source,
               "image_shape": list(e.image.shape), "level": _packed(e.level)}
        look = e.appearance
        rec["appearance"] = None if look is None else [_packed(a) for a in look]
        for key in sizes:
            arr = getattr(e, key)
            if arr is None:
                rec[f"{key}_offset"] = None
                continue
            rec[f"{key}_offset"] = sizes[key]
            sizes[key] += arr.size
        records.append(rec)
    dtypes = {"image": np.float32, "mask": np.bool_, "context": np.bool_}
    for key, name in _ARRAYS.items():
        with atomic_path(folder / name) as tmp:
            flat = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtypes[key],
                                             shape=(sizes[key],))
            for e, rec in zip(bank.entries, records):
                arr = getattr(e, key)
                if arr is not None:
                    off = rec[f"{key}_offset"]
                    flat[off:off + arr.size] = np.asarray(arr, dtypes[key]).ravel()
            flat.flush()
            del flat
    header = {"version": _VERSION, "connectivity": bank.connectivity, "margin": bank.margin,
              "min_voxels": bank.min_voxels, "case_loads": bank.case_loads,
              "entries": records}
    atomic_write_text(folder / BANK_INDEX, json.dumps(header))
    return folder


def load_bank_folder(folder: str | Path, mmap: bool = True) -> LesionBank:
    """Open a bank folder written by :func:`save_bank_folder`.

    Parameters
    ----------
    folder : path-like
    mmap : bool
        Map the arrays read-only (default): the lesions' patches are views into the
        files, shared with every other process that maps them. False reads them into
        this process's memory.

    Raises
    ------
    BankError
        The folder is not a complete bank folder, or its files disagree.
    """
    folder = Path(folder)
    try:
        header = parse_json((folder / BANK_INDEX).read_text(encoding="utf-8"))
        if header.get("version") != _VERSION:
            raise ValueError(f"unknown bank folder version {header.get('version')!r}")
        flats = {key: np.load(folder / name, mmap_mode="r" if mmap else None)
                 for key, name in _ARRAYS.items()}
        entries = [_entry(rec, flats) for rec in header["entries"]]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise BankError(f"{folder}: not a readable lesion bank folder ({exc})") from None
    bank = LesionBank(entries, header["connectivity"], header["margin"], header["min_voxels"])
    bank.case_loads = dict(header.get("case_loads", {}))
    return bank


def _entry(rec: dict, flats: dict) -> BankEntry:
    shape = tuple(rec["image_shape"])
    spatial = shape[1:]
    arrays = {}
    for key, want in (("image", shape), ("mask", spatial), ("context", spatial)):
        off = rec[f"{key}_offset"]
        if off is None:
            arrays[key] = None
            continue
        n = int(np.prod(want))
        if off + n > flats[key].size:
            raise ValueError(f"{_ARRAYS[key]} is shorter than its index says")
        arrays[key] = flats[key][off:off + n].reshape(want)
    entry = BankEntry(Lesion.from_dict(rec["lesion"]), arrays["image"], arrays["mask"],
                      _unpacked(rec["stats"]), _unpacked(rec["spacing_zyx"]), rec["source"],
                      arrays["context"])
    # measured when the folder was written: the same values a fresh measurement gives
    entry.__dict__["_level"] = _unpacked(rec["level"])
    look = rec["appearance"]
    entry.__dict__["_appearance"] = None if look is None else tuple(_unpacked(a) for a in look)
    return entry
