"""napari reader: NIfTI, NRRD/NHDR, MetaImage and DICOM series folders.

Everything is read through the engine's :func:`~napari_lesionmix.core.case.read_image`,
so napari sees the same arrays and geometry as the batch engine. Label-like integer
images open as Labels (see :func:`~napari_lesionmix._layers.looks_like_labels`), the rest
as Image, with ``scale``/``translate`` from the geometry and the full geometry in
``metadata``. A direction that is not axis-aligned is shown on the voxel grid (napari has
no direction) with a warning: it is never resampled. An axis-aligned direction that is not
the identity (flipped or permuted axes, e.g. the MNI sample) is shown on the voxel grid
too, with an info notification: napari's world coordinates are then not physical mm on
those axes.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._layers import layer_kwargs, looks_like_labels
from .core.image_io import label_dtype, read_image
from .core.io_utils import IMAGE_SUFFIXES, split_ext

__all__ = ["napari_get_reader", "read_layer_data", "can_read"]

_DICOM_SUFFIXES = (".dcm", ".ima", ".dicom")


def _is_dicom_folder(path: Path) -> bool:
    """A folder holding at least one file that looks like DICOM (checked cheaply)."""
    try:
        with os.scandir(path) as it:
            for n, entry in enumerate(it):
                if n > 200:
                    break
                if not entry.is_file():
                    continue
                if entry.name.lower().endswith(_DICOM_SUFFIXES):
                    return True
                with open(entry.path, "rb") as fh:
                    head = fh.read(132)
                if head[128:132] == b"DICM":
                    return True
    except OSError:
        return False
    return False


def can_read(path) -> bool:
    """True if ``path`` is an existing file with a known extension or a DICOM folder.

    Never raises.
    """
    try:
        p = Path(os.fspath(path))
        if p.is_dir():
            return _is_dicom_folder(p)
        return p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES)
    except (TypeError, ValueError, OSError):
        return False


def napari_get_reader(path) -> Callable | None:
    """Return a reader for ``path`` (a path or a list of paths), or None.

    Never raises: anything this plugin cannot read (another extension, a missing file,
    a folder without DICOM files) gives None.

    Parameters
    ----------
    path : str, pathlib.Path or list of them

    Returns
    -------
    callable or None
        ``reader(path) -> list of (data, kwargs, layer_type)``.
    """
    from ._dataset_reader import dataset_reader

    whole = dataset_reader(path)  # an nnU-Net raw dataset: folder, dataset.json, imagesTr/
    if whole is not None:
        return whole
    try:
        paths = list(path) if isinstance(path, (list, tuple)) else [path]
        if not paths or not all(can_read(p) for p in paths):
            return None
    except Exception:  # noqa: BLE001 - the contract: never raise
        return None
    return read_layers


def read_layers(path) -> list[tuple]:
    """Read one or several files / DICOM folders into napari layer data tuples."""
    paths = list(path) if isinstance(path, (list, tuple)) else [path]
    return [read_layer_data(p) for p in paths]


RECIPE_KEY = "lesionmix_recipe"
RECIPE_FILE = "lesionmix_recipe.json"


def dataset_recipe(path) -> Path | None:
    """The ``lesionmix_recipe.json`` of the dataset a file belongs to, if there is one.

    Looked for beside the file and one folder up (an nnU-Net dataset keeps it at its
    root, beside ``imagesTr/`` and ``labelsTr/``).
    """
    path = Path(path)
    for folder in (path.parent, path.parent.parent):
        candidate = folder / RECIPE_FILE
        if candidate.is_file():
            return candidate
    return None


def read_layer_data(path, layer_type: str | None = None, name: str | None = None) -> tuple:
    """One image file as a napari layer data tuple ``(data, kwargs, layer_type)``.

    Parameters
    ----------
    path : path-like
        File or DICOM folder.
    layer_type : {"image", "labels"}, optional
        Force the layer type; default: guessed with :func:`looks_like_labels`.
    name : str, optional
        Layer name; default the file name without extension.

    Returns
    -------
    tuple
        ``(array, kwargs, layer_type)`` with scale, translate and metadata (geometry,
        source path, stored dtype).

    Raises
    ------
    CaseError
        Unreadable file (message names it).

    Warns
    -----
    UserWarning
        The direction is not axis-aligned: the layer shows the voxel grid, not physical
        space.
    """
    path = Path(path)
    array, geometry, dtype = read_image(path)
    if layer_type is None:
        layer_type = "labels" if looks_like_labels(array, path) else "image"
    kwargs = layer_kwargs(geometry, name or split_ext(path.name)[0], str(path), dtype)
    recipe = dataset_recipe(path)
    if recipe is not None:
        kwargs["metadata"][RECIPE_KEY] = str(recipe)
    if not geometry.is_axis_aligned:
        msg = (f"{path}: the direction {tuple(round(v, 4) for v in geometry.direction)} is not "
               "axis-aligned; napari shows it on its voxel grid (not resampled, not in "
               "physical space). The full geometry is kept in the layer's metadata and is "
               "written back on save.")
        kwargs["metadata"]["lesionmix_warning"] = msg
        warnings.warn(msg, UserWarning, stacklevel=2)
    elif not _is_identity(geometry.direction, geometry.ndim):
        msg = (f"{path.name}: the direction {tuple(round(v, 4) for v in geometry.direction)} "
               "flips or permutes axes; napari shows the layer on its voxel grid, so the "
               "world coordinates are not physical mm on those axes and layers with other "
               "directions may not line up. The full geometry is kept and written back on "
               "save.")
        kwargs["metadata"]["lesionmix_note"] = msg
        _show_info(msg)
    if layer_type == "labels" and array.dtype.kind == "b":
        array = array.astype("uint8")
    elif layer_type == "labels" and array.dtype.kind == "f":
        # whole numbers (see looks_like_labels): napari's Labels need integers
        array = array.astype(label_dtype(int(array.max()) if array.size else 0))
    return array, kwargs, layer_type


def _is_identity(direction, ndim: int) -> bool:
    return bool(np.allclose(np.asarray(direction, float), np.eye(ndim).ravel(), atol=1e-6))


def _show_info(message: str) -> None:
    """An info notification (napari's), once per layer opened."""
    try:
        from napari.utils.notifications import show_info
    except ImportError:  # pragma: no cover - the reader without napari
        return
    show_info(message)
