"""Fixtures shared by the tests: small synthetic cases built in memory."""

from __future__ import annotations

import numpy as np
import pytest

from napari_lesionmix.core.case import Case
from napari_lesionmix.core.geometry import Geometry


def blob_case(shape=(20, 28, 28), n_lesions=3, seed=0, spacing=None,
              channels=1, lesion_radius=(1.5, 3.0), name="case", organ=False) -> Case:
    """A case with a bright ellipsoidal 'organ' on a zero background and dark blob lesions.

    ``spacing`` is in SimpleITK order (x, y, z). With ``organ`` the foreground is label 1
    (context) and lesions are label 2; else lesions are label 1.
    """
    rng = np.random.default_rng(seed)
    ndim = len(shape)
    grid = np.indices(shape, dtype=np.float32)
    centre = (np.array(shape) - 1) / 2.0
    r = sum(((g - c) / (0.45 * n)) ** 2 for g, c, n in zip(grid, centre, shape))
    fg = r <= 1.0
    img = np.zeros((channels, *shape), np.float32)
    for c in range(channels):
        ramp = 100.0 + 20.0 * c + 10.0 * grid[-1] / shape[-1]
        img[c] = np.where(fg, ramp + rng.normal(0, 2.0, shape), 0).astype(np.float32)
    labels = np.zeros(shape, np.uint8)
    if organ:
        labels[fg] = 1
    lesion_value = 2 if organ else 1
    inner = np.argwhere(r <= 0.5)
    placed = 0
    for _ in range(200):
        if placed == n_lesions or len(inner) == 0:
            break
        ctr = inner[rng.integers(len(inner))]
        rad = rng.uniform(*lesion_radius, size=ndim)
        d = sum(((g - c) / q) ** 2 for g, c, q in zip(grid, ctr, rad))
        blob = d <= 1.0
        grow = blob.copy()
        for ax in range(ndim):
            grow |= np.roll(blob, 2, ax) | np.roll(blob, -2, ax)
        if (labels[grow] == lesion_value).any() or blob.sum() < 3:
            continue
        labels[blob] = lesion_value
        for c in range(channels):
            img[c][blob] = (55.0 + 10.0 * c + rng.normal(0, 2.0, int(blob.sum()))).astype(np.float32)
        placed += 1
    geometry = Geometry.identity(ndim, spacing=spacing or (1.0,) * ndim)
    return Case.from_arrays(img, labels, geometry, name=name)


@pytest.fixture
def small_case() -> Case:
    return blob_case()


@pytest.fixture
def small_cases() -> list[Case]:
    return [blob_case(seed=s, n_lesions=2 + s, name=f"c{s}") for s in range(3)]
