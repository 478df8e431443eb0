"""The canvas side of a session: clicks, going to a voxel, the selection and location marks.

- :func:`install_clicks`: a click on a viewer's canvas selects the lesion under it, or
  sets the location while the session's click mode is ``"location"``. In 2D it is the
  voxel under the cursor; in 3D the ray under the cursor is followed through the case:
  the first lesion it meets is selected, and the location is the most likely voxel of
  the heatmap along it (a 3D location needs a heatmap: the message says so). A drag
  pans, and is not a click.
- :func:`go_to`: move a viewer's slice and camera to a voxel of the case.
- :class:`Marks`: a square around the selected lesion and a thin x on the location, in
  helper Points layers on the case's grid.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from .._layers import ROLE_KEY, grid_kwargs
from ..session.errors import SessionError
from ..session.session import EditSession
from .layer_link import LayerLink

__all__ = ["Marks", "go_to", "install_clicks", "ray_voxels"]

SELECTION_NAME = "LesionMix selection"
LOCATION_NAME = "LesionMix location"


def _camera(viewer: Any):
    scene = getattr(viewer, "scene", None)  # napari >= 0.9; before: viewer.camera
    return scene.camera if scene is not None else viewer.camera


def go_to(viewer: Any, layer: Any, index_zyx) -> None:
    """Move ``viewer``'s slice and camera centre to voxel ``index_zyx`` of ``layer``."""
    if layer is None:
        return
    world = np.asarray(layer.data_to_world(np.asarray(index_zyx, float)), float)
    offset = viewer.dims.ndim - world.size
    displayed = set(viewer.dims.displayed)
    for k, value in enumerate(world):
        if k + offset not in displayed:
            viewer.dims.set_point(k + offset, float(value))
    center = [world[d - offset] for d in viewer.dims.displayed if d >= offset]
    _camera(viewer).center = tuple(center)


def ray_voxels(layer: Any, event: Any, shape: tuple) -> np.ndarray:
    """The voxels (array index, in order from the camera) the 3D ray under the mouse
    crosses in ``layer``'s grid; empty when it misses."""
    start, end = layer.get_ray_intersections(event.position, event.view_direction,
                                             list(event.dims_displayed), world=True)
    if start is None or end is None:
        return np.zeros((0, len(shape)), int)
    start, end = np.asarray(start, float)[-len(shape):], np.asarray(end, float)[-len(shape):]
    n = max(int(np.ceil(np.linalg.norm(end - start) * 2)), 2)
    pts = np.rint(start + (end - start) * np.linspace(0, 1, n)[:, None]).astype(int)
    inside = np.all((pts >= 0) & (pts < np.asarray(shape)), axis=1)
    pts = pts[inside]
    if not len(pts):
        return pts
    keep = np.ones(len(pts), bool)
    keep[1:] = np.any(np.diff(pts, axis=0) != 0, axis=1)
    return pts[keep]


def _pick_3d(session: EditSession, link: LayerLink, event: Any) -> str:
    """A 3D click: select the first lesion along the ray, or set the location at the most
    likely voxel of the heatmap along it. Returns what happened, for the status bar."""
    case = session.case
    voxels = ray_voxels(link.label_layer, event, case.spatial_shape)
    if not len(voxels):
        return "the click missed the case"
    if session.click_mode == "select":
        for v in voxels:
            k = session.lesion_at(v)
            if k is not None:
                session.select(k, focus=False)
                return f"lesion {k + 1} selected (the first one along the ray)"
        return "no lesion along the ray under the cursor"
    lmap = session.likelihood
    if lmap is None:
        raise SessionError("in 3D a location is picked on the heatmap: build or load a "
                           "likelihood map (Likelihood tab), or click in a 2D view")
    physical = case.geometry.index_to_physical(voxels.astype(float))
    idx = np.rint(lmap.geometry.physical_to_index(physical)).astype(int)
    ok = np.all((idx >= 0) & (idx < np.asarray(lmap.prob.shape)), axis=1)
    values = np.zeros(len(voxels))
    values[ok] = lmap.prob[tuple(idx[ok].T)]
    values *= session.context.allowed[tuple(voxels.T)]
    if values.max() <= 0:
        return "the heatmap is zero along the ray under the cursor"
    session.set_location(voxels[int(np.argmax(values))], focus=False)
    return f"location set at the most likely voxel along the ray {session.location}"


def click_without_drag(event):
    """Follow a napari mouse-drag callback from the press to the release (``yield from``
    it); True when the mouse came back up where it went down (a click, not a drag)."""
    start = np.asarray(event.position, float)
    yield
    moved = False
    while event.type == "mouse_move":
        moved = True
        yield
    return not (moved and not np.allclose(start, event.position))


def install_clicks(viewer: Any, session: EditSession, link: LayerLink) -> None:
    """Make a click on ``viewer``'s canvas select a lesion or set the location."""
    sref, lref = weakref.ref(session), weakref.ref(link)

    def on_mouse(model, event):
        session, link = sref(), lref()
        if session is None or session.case is None or link is None or link.label_layer is None:
            return
        if getattr(event, "button", 1) not in (None, 1):
            return
        active = model.layers.selection.active
        if getattr(active, "mode", "pan_zoom") not in ("pan_zoom", "transform"):
            return  # painting, picking, drawing: not ours
        start = np.asarray(event.position, float)
        if not (yield from click_without_drag(event)):
            return  # a drag pans the view
        try:
            if len(event.dims_displayed) == 3:
                model.status = _pick_3d(session, link, event)
                return
            idx = np.rint(link.label_layer.world_to_data(start)).astype(int)
            if np.all((idx >= 0) & (idx < np.asarray(session.case.spatial_shape))):
                session.click(idx)
        except SessionError as exc:
            session.message.emit("info", str(exc))

    on_mouse.__name__ = "lesionmix_click"
    viewer.mouse_drag_callbacks.append(on_mouse)


class Marks:
    """A yellow square around the selected lesion and a thin magenta x on the location.

    Both are helper Points layers on the case's grid (made again when the case changes
    its number of dimensions), named ``"LesionMix selection"`` and ``"LesionMix location"``.
    """

    def __init__(self, viewer: Any, session: EditSession, link: LayerLink):
        self._viewer = weakref.ref(viewer)
        self.session = session
        self.link = link
        session.selection_changed.connect(self.update)
        session.lesions_changed.connect(self.update)
        session.location_changed.connect(self.update)
        session.case_changed.connect(self.update)

    def layer(self, role: str):
        """The marker layer of ``role`` ("selection" or "location"), or None."""
        viewer = self._viewer()
        if viewer is None:
            return None
        return next((lay for lay in viewer.layers if lay.metadata.get(ROLE_KEY) == role), None)

    def update(self, *_) -> None:
        """Put the marks where the selection and the location are now."""
        s = self.session
        lesion = s.selected_lesion
        if lesion is None:
            self._set("selection", None)
        else:
            extent = max(sl.stop - sl.start for sl in lesion.bbox) + 4
            self._set("selection", lesion.centroid, size=float(extent))
        spacing = float(min(s.case.geometry.spacing)) if s.case is not None else 1.0
        self._set("location", s.location, size=3.0 * spacing)

    def _set(self, role: str, where, size: float = 6.0) -> None:
        viewer, case = self._viewer(), self.session.case
        layer = self.layer(role)
        if layer is not None and (case is None or layer.ndim != case.ndim):
            viewer.layers.remove(layer)
            layer = None
        if where is None or case is None:
            if layer is not None:
                layer.data = np.zeros((0, layer.ndim))
            return
        kw = grid_kwargs(case.geometry)
        if layer is None:
            active = viewer.layers.selection.active
            colour = "yellow" if role == "selection" else "magenta"
            layer = viewer.add_points(
                np.zeros((0, case.ndim)), name=SELECTION_NAME if role == "selection"
                else LOCATION_NAME, symbol="square" if role == "selection" else "x",
                face_color="transparent", border_color=colour,
                border_width=0.05 if role == "selection" else 0.06,
                opacity=1.0 if role == "selection" else 0.7, metadata={ROLE_KEY: role}, **kw)
            if active is not None:
                viewer.layers.selection.active = active  # keep the user's active layer
        elif not (np.allclose(layer.scale, kw["scale"])
                  and np.allclose(layer.affine.affine_matrix, kw["affine"])):
            layer.scale, layer.affine = kw["scale"], kw["affine"]
        layer.data = np.asarray([where], float)
        layer.size = size
