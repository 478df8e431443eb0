"""Helpers of the GUI tests: synthetic cases as napari layers, waiting for workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_lesionmix._layers import layer_kwargs
from napari_lesionmix.core.case import Case
from napari_lesionmix.core.geometry import Geometry

MANIFEST = Path(__file__).resolve().parents[2] / "napari_lesionmix" / "napari.yaml"


def synthetic_case(shape=(24, 48, 48), centres=((12, 16, 16), (12, 32, 32), (8, 16, 34)),
                   radius=3.0, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0),
                   organ=False) -> Case:
    """A bright ellipsoid (the 'brain' or 'liver') with dark spherical lesions.

    Lesions are label 1 (label 2 with ``organ``, the ellipsoid then being label 1).
    ``spacing`` and ``origin`` are in SimpleITK order (x, y, z).
    """
    rng = np.random.default_rng(0)
    grid = np.indices(shape, dtype=np.float32)
    c = (np.array(shape) - 1) / 2
    r = sum(((g - m) / (0.48 * n)) ** 2 for g, m, n in zip(grid, c, shape))
    fg = r <= 1
    img = np.where(fg, 100 + 20 * grid[-1] / shape[-1] + rng.normal(0, 2, shape), 0)
    labels = np.zeros(shape, np.uint8)
    if organ:
        labels[fg] = 1
    for centre in centres:
        d = sum((g - m) ** 2 for g, m in zip(grid, centre)) <= radius ** 2
        labels[d] = 2 if organ else 1
        img[d] = 40 + rng.normal(0, 2, int(d.sum()))
    geometry = Geometry(spacing, origin, tuple(np.eye(len(shape)).ravel()))
    return Case.from_arrays(img.astype(np.float32), labels, geometry, name="synthetic")


def add_case(viewer, case: Case, image_dtype=np.float32):
    """Add a case to a viewer as an Image and a Labels layer carrying its geometry."""
    img = viewer.add_image(case.channels[0].astype(image_dtype),
                           **layer_kwargs(case.geometry, "image"))
    lab = viewer.add_labels(case.labels.copy(), **layer_kwargs(case.geometry, "labels"))
    return img, lab


def wait_done(qtbot, dock, timeout=20000):
    """Block until every worker the dock started has finished."""
    qtbot.waitUntil(lambda: not dock.workers, timeout=timeout)
