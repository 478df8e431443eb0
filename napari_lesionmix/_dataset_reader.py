"""napari reader for a whole nnU-Net v2 raw dataset (its folder, ``dataset.json`` or
``imagesTr/``): opens the Review dock on it.

In a napari window the dataset opens in the Review dock (which shows its first case);
called without a viewer (e.g. ``napari_get_reader`` from a script), the reader returns
the first case's channels and labels as layer data.

The dataset is listed through :class:`napari_lesionmix.review.index.ReviewDataset`, the
model of the Review dock, so it works for any nnU-Net v2 raw dataset and says more for
one written by ``lesionmix generate``.
"""

from __future__ import annotations

from collections.abc import Callable

from .review.index import ReviewDataset, ReviewError, find_dataset_root

__all__ = ["dataset_reader", "read_dataset", "first_case_layers"]


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
    """Open the dataset in the Review dock of the current napari window (napari's
    "nothing more to add" answer, ``[(None,)]``), or without a window return the layer
    data of its first readable case."""
    viewer = _current_viewer()
    if viewer is not None:
        from ._widgets.review_dock import open_dataset_in_dock

        path = path[0] if isinstance(path, (list, tuple)) else path
        if not open_dataset_in_dock(viewer, path).session.review:
            raise ReviewError(f"{path}: the Review dock could not open it")
        return [(None,)]
    return first_case_layers(path)


def _current_viewer():
    try:
        import napari
    except ImportError:  # pragma: no cover - the reader without napari
        return None
    viewer = napari.current_viewer()
    return viewer if viewer is not None and getattr(viewer, "window", None) is not None \
        else None


def first_case_layers(path) -> list[tuple]:
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
