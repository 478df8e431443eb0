"""``splits_final.json``: cross-validation folds that keep synthesised cases out of validation.

nnU-Net's default 5-fold split is random over every case it finds, so a synthesised
case and its source can land on opposite sides: the model trains on a variant of a
validation patient and the validation score is inflated. The split written here is
grouped by source case:

- the folds are drawn over the **source** cases (nnU-Net's seed, 12345, and its
  balanced fold sizes), at most 5 of them; with 2 to 4 sources each source is its own
  fold (leave-one-out);
- fold ``f`` validates on the original cases of its sources only;
- a synthesised case trains in exactly the folds where its source trains, and is never
  validated on.

With one source no such split exists (its variants would all train on the validation
case): nothing is written and the run says so. Without the originals in OUTPUT
(``--no-originals``) there is nothing to validate on: likewise.

The format is nnU-Net v2's: a list of ``{"train": [...], "val": [...]}`` of case
identifiers. nnU-Net reads it from ``nnUNet_preprocessed/<DatasetXXX_Name>/``;
``nnUNetv2_plan_and_preprocess`` (recent versions: 2.8.1, tested) copies the one in the raw dataset
folder there when there is none yet, and :func:`install_splits` copies it for you.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from ..core.io_utils import atomic_write_text, parse_json
from .layout import OutputLayout
from .manifest import Manifest

__all__ = ["SplitError", "N_FOLDS", "SEED", "grouped_splits", "install_splits", "splits_from_manifest",
           "write_splits"]

N_FOLDS = 5
SEED = 12345  # nnU-Net's seed for its own split
DATASET_NAME = re.compile(r"^Dataset\d{3}_.+")


class SplitError(ValueError):
    """No leak-free split can be made, or it cannot be installed. Names the reason."""


def grouped_splits(originals, sources_of: dict, n_folds: int = N_FOLDS,
                   seed: int = SEED) -> list[dict]:
    """Folds over the source cases; synthesised cases train with their source.

    Parameters
    ----------
    originals : iterable of str
        The original (source) cases present in the output.
    sources_of : dict
        Synthesised case → its source case.
    n_folds : int
        At most this many folds (fewer when there are fewer sources).
    seed : int

    Returns
    -------
    list of dict
        ``[{"train": [...], "val": [...]}, ...]``, names sorted.

    Raises
    ------
    SplitError
        Fewer than two original cases.

    Examples
    --------
    >>> s = grouped_splits(["a", "b"], {"a_lmix0000": "a", "b_lmix0001": "b"})
    >>> [(f["train"], f["val"]) for f in s]
    [(['a', 'a_lmix0000'], ['b']), (['b', 'b_lmix0001'], ['a'])]
    """
    sources = sorted(set(originals))
    if len(sources) < 2:
        raise SplitError(f"{len(sources)} original case(s) in the output: a split that keeps "
                         "every synthesised case out of validation needs at least 2 source "
                         "cases with their originals (train on all with nnU-Net's fold 'all', "
                         "or add cases)")
    k = min(int(n_folds), len(sources))
    order = np.random.RandomState(seed).permutation(len(sources))
    fold_of = {}
    for f, chunk in enumerate(np.array_split(order, k)):
        for i in chunk:
            fold_of[sources[int(i)]] = f
    missing = sorted({s for s in sources_of.values() if s not in fold_of})
    if missing:
        raise SplitError(f"synthesised cases come from source(s) {missing} whose originals are "
                         "not in the output")
    out = []
    for f in range(k):
        val = [s for s in sources if fold_of[s] == f]
        train = [s for s in sources if fold_of[s] != f]
        train += [x for x, s in sources_of.items() if fold_of[s] != f]
        out.append({"train": sorted(train), "val": sorted(val)})
    return out


def splits_from_manifest(manifest: Manifest) -> list[dict]:
    """The grouped split of a run from its manifest (originals and written cases)."""
    originals = list(manifest.data.get("originals", {}))
    if not originals:
        raise SplitError("the output holds no original cases (--no-originals), so no fold "
                         "can validate on real cases; run without --no-originals")
    sources_of = {name: e["source"] for name, e in manifest.written().items()}
    return grouped_splits(originals, sources_of)


def write_splits(layout: OutputLayout, manifest: Manifest) -> tuple[list | None, str]:
    """Write (or remove) ``OUTPUT/splits_final.json`` for the run's current cases.

    Returns
    -------
    (splits or None, message)
        None with the reason when no leak-free split exists (any old file is removed,
        so it never disagrees with the cases).
    """
    try:
        splits = splits_from_manifest(manifest)
    except SplitError as exc:
        layout.splits.unlink(missing_ok=True)
        return None, f"no {layout.splits.name} written: {exc}"
    atomic_write_text(layout.splits, json.dumps(splits, indent=1) + "\n", tmp_dir=layout.tmp)
    n_val = sum(len(f["val"]) for f in splits)
    return splits, (f"{layout.splits.name}: {len(splits)} folds grouped by source case "
                    f"({n_val} original cases validated once each; synthesised cases train "
                    "only with their source)")


def install_splits(output: str | Path, preprocessed: str | Path | None = None,
                   dataset: str | None = None, overwrite: bool = False) -> tuple[Path, bool]:
    """Copy ``OUTPUT/splits_final.json`` to nnU-Net's preprocessed folder of the dataset.

    Parameters
    ----------
    output : path-like
        The run's output (an nnU-Net raw dataset folder).
    preprocessed : path-like, optional
        nnU-Net's preprocessed root; default the ``nnUNet_preprocessed`` environment
        variable.
    dataset : str, optional
        nnU-Net's dataset name (``DatasetXXX_Name``); default OUTPUT's folder name.
    overwrite : bool
        Replace a different splits_final.json already there.

    Returns
    -------
    (path, written) : Path, bool
        The installed file; False when an identical file was already there.

    Raises
    ------
    SplitError
        No split in OUTPUT, no preprocessed root, a name that is not nnU-Net's, or a
        different file in the way (without ``overwrite``).
    """
    output = Path(output).expanduser().resolve()
    source = output / "splits_final.json"
    if not source.is_file():
        raise SplitError(f"{source}: missing; run `lesionmix splits {output}` first (a run "
                         "writes it when a leak-free split exists)")
    root = preprocessed or os.environ.get("nnUNet_preprocessed")
    if not root:
        raise SplitError("nnUNet_preprocessed is not set: export it as for nnU-Net, or pass "
                         "--preprocessed DIR")
    name = dataset or output.name
    if not DATASET_NAME.match(name):
        raise SplitError(f"{name!r} is not an nnU-Net dataset name (DatasetXXX_Name); name "
                         "OUTPUT that way or pass --dataset DatasetXXX_Name")
    folder = Path(root).expanduser() / name
    if not folder.is_dir():
        raise SplitError(f"{folder}: no such folder; run nnUNetv2_plan_and_preprocess for "
                         f"{name} first")
    target = folder / "splits_final.json"
    text = source.read_text(encoding="utf-8")
    if target.exists():
        try:
            same = parse_json(target.read_text(encoding="utf-8")) == parse_json(text)
        except (OSError, ValueError):
            same = False
        if same:
            return target, False
        if not overwrite:
            raise SplitError(f"{target}: exists and differs from {source}; pass --overwrite "
                             "to replace it (folds already trained used the old split)")
    atomic_write_text(target, text)
    return target, True
