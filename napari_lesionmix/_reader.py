"""napari reader: NIfTI, NRRD/NHDR, MetaImage and DICOM series folders.

Everything is read through the engine's :func:`~napari_lesionmix.core.case.read_image`,
so napari sees the same arrays and geometry as the batch engine. Label-like integer
images open as Labels (see :func:`~napari_lesionmix._layers.looks_like_labels`), the rest
as Image. Every layer carries its full geometry as napari's ``scale`` and ``affine``
(:mod:`napari_lesionmix._layers`): world coordinates are physical mm (LPS, in z, y, x
order) whatever the file's direction, so files on different grids line up and an axial
slice shows anterior up. Nothing is resampled: permuted axes are transposed (a view), and
the writer puts the file's axis order and exact geometry back. An oblique direction is
noted in the layer's metadata (the Case dock shows it): napari's 2D view applies only the
in-plane part of its rotation.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

from ._layers import display_layout, layer_kwargs, looks_like_labels
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
        ``(array, kwargs, layer_type)`` with scale, affine, units and metadata (the
        file's geometry and axis order, source path, stored dtype).

    Raises
    ------
    CaseError
        Unreadable file (message names it).
    """
    path = Path(path)
    array, geometry, dtype = read_image(path)
    if layer_type is None:
        layer_type = "labels" if looks_like_labels(array, path) else "image"
    axes, shown = display_layout(geometry)
    if axes != tuple(range(array.ndim)):
        array = array.transpose(axes)
    kwargs = layer_kwargs(shown, name or split_ext(path.name)[0], str(path), dtype,
                          file_geometry=geometry, axes=axes)
    recipe = dataset_recipe(path)
    if recipe is not None:
        kwargs["metadata"][RECIPE_KEY] = str(recipe)
    if not shown.is_axis_aligned:
        kwargs["metadata"]["lesionmix_note"] = (
            f"{path.name} is oblique (direction "
            f"{tuple(round(v, 3) for v in geometry.direction)}): the 2D views apply the "
            "in-plane part of its rotation, the 3D view all of it; nothing is resampled.")
        quiet_oblique_slicing()
    if layer_type == "labels" and array.dtype.kind == "b":
        array = array.astype("uint8")
    elif layer_type == "labels" and array.dtype.kind == "f":
        # whole numbers (see looks_like_labels): napari's Labels need integers
        array = array.astype(label_dtype(int(array.max()) if array.size else 0))
    return array, kwargs, layer_type


def quiet_oblique_slicing() -> None:
    """Silence napari's warning about slicing an oblique layer in 2D.

    napari warns on every slice of a layer whose affine is not orthogonal to the view,
    and its notification manager shows each warning to the user, who cannot act on it;
    the layer's note (shown in the Case dock) says it once.
    """
    warnings.filterwarnings("ignore", message="Non-orthogonal slicing", category=UserWarning)
