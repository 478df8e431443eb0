"""The likelihood map as a heatmap a person can read over any image.

- translucent (not additive) and in saturated colours, so bright white matter does not
  wash it out;
- thresholded: values below ``threshold`` (a fraction of the map's maximum) are not drawn;
- masked to the allowed region of the case (where a lesion may go), on the case's grid;
- placed just below the user's label layer, so the labels keep their own colours;
- with a colour bar (values as a fraction of the map's maximum), shown only while the
  heatmap is: hiding the layer (its eye in the layer list, or *Show heatmap* in the
  Likelihood tab) hides its colour bar too, and a rebuilt map keeps the user's choice.

The layer is a helper (``metadata[ROLE_KEY] == "likelihood"``), named
``"LesionMix likelihood"``.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from psygnal import Signal

from .._layers import ROLE_KEY, grid_kwargs
from ..session.session import EditSession
from .layer_link import LayerLink

__all__ = ["Heatmap", "heat_colormap"]

NAME = "LesionMix likelihood"
ROLE = "likelihood"


def heat_colormap(threshold: float):
    """A napari colour map: transparent below ``threshold``, then saturated colours from
    deep blue through magenta to orange (``plasma`` without its pale yellow end, which is
    lost over white matter).

    Parameters
    ----------
    threshold : float
        In [0, 1): the fraction of the contrast range below which nothing is drawn.
    """
    from matplotlib import colormaps
    from napari.utils.colormaps import Colormap

    t = float(np.clip(threshold, 0.0, 0.99))
    ramp = colormaps["plasma"](np.linspace(0.0, 0.85, 32))
    ramp[:, 3] = 1.0
    controls = np.concatenate([[0.0, t], np.linspace(t + 1e-6, 1.0, 32)])
    colors = np.vstack([[0, 0, 0, 0], [0, 0, 0, 0], ramp])
    return Colormap(colors=colors, controls=controls, name=f"lesionmix_heat_{t:.3f}")


class Heatmap:
    """Shows the session's likelihood map in a viewer (see the module docstring).

    Parameters
    ----------
    viewer : napari.Viewer
    session : EditSession
    link : LayerLink

    Signals
    -------
    visibility_changed(bool)
        The heatmap was shown or hidden.
    """

    visibility_changed = Signal(bool)

    def __init__(self, viewer: Any, session: EditSession, link: LayerLink):
        self._viewer = weakref.ref(viewer)
        self.session = session
        self.link = link
        self.threshold = 0.05
        self.opacity = 0.6
        self.visible = True
        session.likelihood_changed.connect(self.update)
        session.case_changed.connect(self.update)

    def layer(self):
        """The heatmap layer, or None."""
        viewer = self._viewer()
        if viewer is None:
            return None
        return next((lay for lay in viewer.layers if lay.metadata.get(ROLE_KEY) == ROLE), None)

    def shown_map(self) -> tuple | None:
        """``(values, geometry)`` as drawn: on the case's grid and masked to its allowed
        region when there is a case, scaled to a maximum of 1; None without a map."""
        lmap, case = self.session.likelihood, self.session.case
        if lmap is None:
            return None
        prob, geometry = lmap.prob, lmap.geometry
        if case is not None:
            if not lmap.on_grid(case.geometry, case.spatial_shape):
                prob = lmap.resample_to(case.geometry, case.spatial_shape).prob
            prob, geometry = np.where(self.session.context.allowed, prob, 0), case.geometry
        top = float(prob.max()) if prob.size else 0.0
        return (prob / top if top > 0 else prob).astype(np.float32), geometry

    def update(self) -> None:
        """Draw the session's map (remove the layer when there is none)."""
        viewer, layer = self._viewer(), self.layer()
        if viewer is None:
            return
        shown = self.shown_map()
        if shown is None:
            if layer is not None:
                viewer.layers.remove(layer)
            return
        values, geometry = shown
        kw = grid_kwargs(geometry)
        if layer is not None and layer.data.shape == values.shape:
            layer.data = values
            layer.scale, layer.affine = kw["scale"], kw["affine"]
            return
        if layer is not None:
            viewer.layers.remove(layer)
        from napari.layers import Image

        layer = Image(values, name=NAME, colormap=heat_colormap(self.threshold),
                      blending="translucent", opacity=self.opacity, contrast_limits=(0, 1),
                      metadata={ROLE_KEY: ROLE}, **kw)
        layer.visible = layer.colorbar.visible = self.visible
        layer.events.visible.connect(self._on_layer_visible)
        active = viewer.layers.selection.active
        label = self.link.label_layer
        index = viewer.layers.index(label) if label in viewer.layers else len(viewer.layers)
        viewer.layers.insert(index, layer)
        if active is not None and active in viewer.layers:
            viewer.layers.selection.active = active

    def set_visible(self, visible: bool) -> None:
        """Show or hide the heatmap and its colour bar."""
        layer = self.layer()
        if layer is not None:
            layer.visible = bool(visible)  # the layer's event does the rest
        else:
            self.visible = bool(visible)
            self.visibility_changed.emit(self.visible)

    def _on_layer_visible(self, event=None) -> None:
        """The layer was shown or hidden (its eye, the dock, code): its colour bar with it."""
        layer = self.layer()
        if layer is None:
            return
        self.visible = bool(layer.visible)
        layer.colorbar.visible = self.visible
        self.visibility_changed.emit(self.visible)

    def set_threshold(self, value: float) -> None:
        """Draw nothing below ``value`` (a fraction of the map's maximum)."""
        self.threshold = float(value)
        layer = self.layer()
        if layer is not None:
            layer.colormap = heat_colormap(self.threshold)

    def set_opacity(self, value: float) -> None:
        """The heatmap's opacity, 0 to 1."""
        self.opacity = float(value)
        layer = self.layer()
        if layer is not None:
            layer.opacity = self.opacity
