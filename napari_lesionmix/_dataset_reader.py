"""napari reader for a whole nnU-Net v2 raw dataset (its folder, ``dataset.json`` or
``imagesTr/``): opens the first case's channels and labels.

The dataset is listed through :class:`napari_lesionmix.review.index.ReviewDataset`, the
model of the Review dock, so it works for any nnU-Net v2 raw dataset and says more for
one written by ``lesionmix generate``.
"""

from __future__ import annotations

from collections.abc import Callable

from .review.index import ReviewDataset, ReviewError, find_dataset_root

__all__ = ["dataset_reader", "read_dataset"]


def dataset_reader(path) -> Callable | None:
    """The reader for ``path`` if it is an nnU-Net raw dataset, else None (never raises)."""
    try:
        paths = list(path) if isinstance(path, (list, tuple)) else [path]
        if len(paths) == 1 and find_dataset_root(paths[0]) is not None:
            return read_dataset
    except Exception:  # noqa: BLE001 - the reader contract: never raise
        return None
    return None


def read_dataset(path) -> list[tuple]:
    """Layer data of the dataset's first readable case: one image per channel, the labels.

    Raises
    ------
    ReviewError
        No case of the dataset can be opened (the message names the files).
    """
    from ._reader import read_layer_data

    path = path[0] if isinstance(path, (list, tuple)) else path
    review = ReviewDataset.open(path)
    problems = []
    for row in review.rows:
        if row.problem:
            problems.append(f"{row.name}: {row.problem}")
            continue
        layers = [read_layer_data(p, "image") for p in row.image_paths]
        layers.append(read_layer_data(row.label_path, "labels"))
        for _, kwargs, _ in layers:
            kwargs["metadata"]["lesionmix_dataset"] = str(review.root)
            kwargs["metadata"]["lesionmix_case"] = row.name
        return layers
    raise ReviewError(f"{review.root}: no case can be opened ({'; '.join(problems) or 'empty'})")
