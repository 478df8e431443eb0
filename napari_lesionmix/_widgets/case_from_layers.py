"""A Case from napari layers: which layers can be channels, and the case itself.

The case is built with :meth:`Case.from_arrays` and ``copy=False``: a float32 image layer
and a label layer of the smallest unsigned type are the case's own arrays (an applied
change shows at once); other voxel types are copied, and the layer side writes applied
changes back into them (:mod:`.layer_link`). No Qt here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._layers import ROLE_KEY, geometry_of_layer
from .._reader import RECIPE_KEY
from ..core.case import Case
from ..core.errors import CaseError
from ..session.errors import SessionError

__all__ = ["case_from_layers", "channel_layers", "dataset_recipe_of", "is_helper", "on_grid"]


def is_helper(layer: Any) -> bool:
    """True for layers the plugin made for display (overlay, markers, previews)."""
    return bool(getattr(layer, "metadata", {}).get(ROLE_KEY))


def _plain_image(layer: Any) -> bool:
    return not (getattr(layer, "rgb", False) or getattr(layer, "multiscale", False))


def on_grid(layer: Any, label_layer: Any) -> bool:
    """True when ``layer`` is a plain (not RGB, not multiscale) image on the label layer's
    voxel grid: the same shape and the same geometry."""
    if layer is None or label_layer is None or not _plain_image(layer) or is_helper(layer):
        return False
    if tuple(layer.data.shape) != tuple(label_layer.data.shape):
        return False
    try:
        return geometry_of_layer(layer).difference(geometry_of_layer(label_layer)) is None
    except ValueError:
        return False


def channel_layers(layers: Sequence, label_layer: Any) -> list:
    """The image layers that are channels by default: every one on the label grid."""
    return [lay for lay in layers if on_grid(lay, label_layer)]


def dataset_recipe_of(layer: Any) -> str | None:
    """The ``lesionmix_recipe.json`` the reader found beside the layer's file, if any."""
    return None if layer is None else layer.metadata.get(RECIPE_KEY)


def case_from_layers(image_layers: Sequence, label_layer: Any,
                     placement_layer: Any = None) -> Case:
    """Build the case the layers hold (sharing their memory where it can).

    Parameters
    ----------
    image_layers : sequence of napari Image layers
        One per channel, all on the label layer's grid.
    label_layer : napari Labels layer
    placement_layer : napari layer, optional
        Its non-zero voxels are where lesions may go.

    Returns
    -------
    Case
        ``channel_names`` are the layer names, ``image_dtypes`` their voxel types.

    Raises
    ------
    SessionError
        No label or image layer, shapes or geometries that disagree, RGB or multiscale
        data, NaN, a voxel type that is not a number. The message names the layer.
    """
    if label_layer is None:
        raise SessionError("choose a Labels layer: the case needs a label map")
    if not image_layers:
        raise SessionError("choose at least one image layer (a channel)")
    name = label_layer.name
    if getattr(label_layer, "multiscale", False):
        raise SessionError(f"labels {name!r}: multiscale layers are not supported")
    labels = np.asarray(label_layer.data)
    if labels.ndim not in (2, 3):
        raise SessionError(f"labels {name!r}: a 2D or 3D label map is needed, this one has "
                           f"shape {labels.shape}")
    try:
        geometry = geometry_of_layer(label_layer)
    except ValueError as exc:
        raise SessionError(f"labels {name!r}: {exc}") from None
    channels = []
    for layer in image_layers:
        if not _plain_image(layer):
            raise SessionError(f"image {layer.name!r}: RGB and multiscale images cannot be "
                               "channels")
        data = np.asarray(layer.data)
        if data.shape != labels.shape:
            raise SessionError(f"image {layer.name!r} has shape {data.shape} but labels "
                               f"{name!r} have shape {labels.shape}: they must be on the "
                               "same voxel grid")
        try:
            diff = geometry.difference(geometry_of_layer(layer))
        except ValueError as exc:
            raise SessionError(f"image {layer.name!r}: {exc}") from None
        if diff:
            raise SessionError(f"image {layer.name!r} and labels {name!r} have different "
                               f"geometry: {diff}")
        if data.dtype.kind not in "biuf":
            raise SessionError(f"image {layer.name!r}: unsupported voxel type {data.dtype}")
        channels.append(data)
    stacked = (channels[0] if len(channels) == 1
               else np.stack([c.astype(np.float32, copy=False) for c in channels]))
    placement = None
    if placement_layer is not None:
        placement = np.asarray(placement_layer.data)
        if placement.shape != labels.shape:
            raise SessionError(f"placement {placement_layer.name!r} has shape "
                               f"{placement.shape} but labels have shape {labels.shape}")
    try:
        case = Case.from_arrays(stacked, labels, geometry, name, placement,
                                channel_names=[lay.name for lay in image_layers], copy=False)
    except CaseError as exc:
        raise SessionError(str(exc)) from None
    case.image_dtypes = [c.dtype.name if c.dtype.kind in "iuf" else "float32"
                         for c in channels]
    return case
