"""The 3D pane of the three-plane view: lesions, the preview and the outline as surfaces.

As in ITK-SNAP's and 3D Slicer's 3D views, the segmentation is shown as surface meshes
(:mod:`.meshes`), not by ray casting volumes: the case's lesions in their label layer's
colours, the preview (what it adds or changes) in the preview's cyan while the lesions
it replaces are hidden, the outline of the allowed region (the brain, the organ) as
translucent glass, and the shared cursor as a small yellow cross seen through the surfaces. All
sit in physical mm (the case's geometry as the layers' ``scale`` and ``affine``). A
preview is made from its own box only, so a slider drag redraws this pane in tens of
milliseconds where one frame of a volume rendering costs a second on a software OpenGL.

The pane is a napari viewer model in 3D with its own canvas; drag to turn it, scroll to
zoom. It shows only what the session holds; the user's layers are not in it.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from .._layers import ROLE_KEY, grid_kwargs
from ..core.lesions import placement_region
from . import meshes
from .preview_layers import PREVIEW_COLOUR

__all__ = ["SurfacePane", "VIEW_DIRECTION"]

#: World z, y, x is LPS (S, P, L) in reverse order, a left-handed frame, which napari's
#: default 3D camera would draw as the patient's mirror image. Flipping the camera's
#: depth axis instead leaves napari's surface lighting behind the surfaces, so the pane
#: draws its world with x negated: the patient the right way round, lit from the front.
MIRROR = np.diag([1.0, 1.0, -1.0, 1.0])
#: the camera looks from the patient's front, right and above (in the pane's world) ...
VIEW_DIRECTION = (-0.45, 1.0, -0.55)
#: ... with superior up
UP_DIRECTION = (1.0, 0.0, 0.0)
#: napari fits the bounding box's diagonal; the outline of a brain fills more
ZOOM = 1.3
OUTLINE_RGBA = (0.78, 0.8, 0.85, 1.0)
OUTLINE_OPACITY = 0.25
CURSOR_COLOUR = "#ffd166"
CURSOR_MM = 16.0  # the cursor's cross, end to end
ROLE = "surface"
#: a triangle nobody sees: napari's Surface layer cannot be empty
_NOTHING = (np.zeros((3, 3), np.float32), np.array([[0, 1, 2]], np.int32))


def _uniform(colour, name: str):
    """A napari colour map of one colour (surfaces carry all-ones values)."""
    from napari.utils.colormaps import Colormap

    rgba = np.asarray(colour, float)
    return Colormap(colors=np.vstack([rgba, rgba]), name=name)


class SurfacePane:
    """The 3D pane (see the module docstring).

    Parameters
    ----------
    viewer : napari.Viewer
        The main viewer (its session, label layer and cursor).
    link : ViewerLink
    canvas_class : type
        The napari ``QtViewer`` class to draw the pane with.

    Attributes
    ----------
    model : napari.components.ViewerModel
    canvas : QtViewer
    outline, preview, cursor : napari layers
    lesions : dict
        Lesion class -> its Surface layer.
    hidden : list of int
        The lesions the shown preview replaces.
    """

    def __init__(self, viewer: Any, link: Any, canvas_class: type):
        from napari.components import ViewerModel
        from napari.layers import Surface, Vectors

        self._viewer = weakref.ref(viewer)
        self.link = link
        self.model = ViewerModel(title="3D")
        self.lesions: dict = {}
        self.hidden: list = []
        self._meshes: list = []  # one per lesion of the session
        self._grid: tuple | None = None  # (shape, geometry) the layers are placed on
        self._wind_back = False
        meta = {ROLE_KEY: ROLE}
        self.outline = Surface((*_NOTHING, np.ones(3)), name="outline", visible=False,
                               colormap=_uniform(OUTLINE_RGBA, "lesionmix_outline"),
                               contrast_limits=(0, 1), opacity=OUTLINE_OPACITY,
                               blending="translucent_no_depth", shading="smooth",
                               metadata=dict(meta))
        self.preview = Surface((*_NOTHING, np.ones(3)), name="preview", visible=False,
                               colormap=_uniform(_rgba(PREVIEW_COLOUR), "lesionmix_preview"),
                               contrast_limits=(0, 1), shading="smooth", metadata=dict(meta))
        self.cursor = Vectors(_cross(np.zeros(3)), name="cursor", edge_width=1.0,
                              edge_color=CURSOR_COLOUR, vector_style="line",
                              blending="translucent_no_depth", visible=False, affine=MIRROR,
                              metadata=dict(meta))
        # the glass first and without a depth test: the lesions over it stay bright
        for layer in (self.outline, self.preview, self.cursor):
            self.model.layers.append(layer)
        self.model.dims.ndisplay = 3
        s = link.session
        self._slots = [(s.case_changed, self.on_case), (s.recipe_changed, self.on_case),
                       (s.lesions_changed, self.on_lesions), (s.preview_changed, self.on_preview),
                       (viewer.dims.events.point, self.on_cursor)]
        for signal, slot in self._slots:
            signal.connect(slot)
        self.on_case()
        # the canvas after the layers: it builds each visual once
        self.canvas = canvas_class(self.model, show_welcome_screen=False)
        self.canvas.dims.setVisible(False)

    def close(self) -> None:
        """Stop following the session and the viewer."""
        for signal, slot in self._slots:
            try:
                signal.disconnect(slot)
            except (TypeError, ValueError, RuntimeError):
                pass
        self._slots = []

    # -- the case -------------------------------------------------------------------------
    def on_case(self, *_) -> None:
        """A new case (or recipe): the outline of its allowed region, its lesions, the
        camera."""
        case = self.link.session.case
        if case is None or case.ndim != 3:
            self._grid = None
            for layer in self.model.layers:
                layer.visible = False
            return
        grid = (case.spatial_shape, case.geometry)
        new_grid = self._grid is None or self._grid[0] != grid[0]
        self._grid = grid
        kw = self._kwargs()
        # marching cubes winds faces outward in index space; a grid that turns the
        # index space inside out (a negative determinant) needs them wound back
        linear = np.asarray(kw["affine"], float)[:3, :3] * np.asarray(kw["scale"], float)
        self._wind_back = bool(np.linalg.det(linear) < 0)
        for layer in self.model.layers:
            if layer is not self.cursor:
                layer.scale, layer.affine = kw["scale"], kw["affine"]
        recipe = self.link.session.recipe
        self._set(self.outline, meshes.outline_surface(placement_region(case,
                                                                        recipe.organ_label)))
        self.on_lesions()
        self.on_cursor()
        if new_grid:
            self.reset_view()

    def reset_view(self) -> None:
        """Fit the case and look at it from the front, right and above, superior up."""
        self.model.reset_view()
        camera = self.model.scene.camera
        camera.set_view_direction(VIEW_DIRECTION, UP_DIRECTION)
        camera.zoom *= ZOOM

    def on_lesions(self, *_) -> None:
        """The case's lesions changed (a new case, Apply, Undo): their surfaces again."""
        s = self.link.session
        if s.case is None or s.case.ndim != 3:
            return
        self._meshes = meshes.lesion_surfaces(s.case.labels, s.lesions, s.recipe.connectivity)
        self.hidden = []
        self._show_lesions()
        self.on_preview()

    def _show_lesions(self) -> None:
        from napari.layers import Surface

        s = self.link.session
        by_class: dict = {}
        for k, (lesion, mesh) in enumerate(zip(s.lesions, self._meshes)):
            if k not in self.hidden:
                by_class.setdefault(int(lesion.label), []).append(mesh)
        for label in sorted(set(by_class) | set(self.lesions)):
            layer = self.lesions.get(label)
            if layer is None:
                layer = Surface((*_NOTHING, np.ones(3)), name=f"lesions {label}",
                                colormap=_uniform(self._colour(label), f"lesionmix_l{label}"),
                                contrast_limits=(0, 1), shading="smooth",
                                metadata={ROLE_KEY: ROLE}, **self._kwargs())
                self.model.layers.insert(1, layer)  # above the glass
                self.lesions[label] = layer
            self._set(layer, meshes.join(by_class.get(label, [])))

    def _colour(self, label: int) -> np.ndarray:
        """The label layer's colour of ``label`` (opaque)."""
        layer = self.link.layers.label_layer
        rgba = np.array([0.9, 0.3, 0.3, 1.0])
        if layer is not None:
            try:
                rgba = np.asarray(layer.get_color(label), float).ravel()[:4]
            except (AttributeError, TypeError, ValueError, IndexError):
                pass
        rgba = rgba if rgba.size == 4 else np.append(rgba[:3], 1.0)
        rgba[3] = 1.0
        return rgba

    def _kwargs(self) -> dict:
        """``scale`` and ``affine`` of a surface layer on the case's grid (mirrored)."""
        if self._grid is None:
            return {}
        kw = grid_kwargs(self._grid[1])
        return {"scale": kw["scale"], "affine": MIRROR @ np.asarray(kw["affine"], float)}

    # -- the preview and the cursor ---------------------------------------------------------
    def on_preview(self, *_) -> None:
        """Show the session's preview (what it adds or changes), hide what it replaces."""
        s = self.link.session
        if s.case is None or s.case.ndim != 3 or s.preview is None:
            mesh, hidden = None, []
        else:
            mesh, hidden = meshes.preview_surface(s.case.labels, s.preview, s.lesions,
                                                  s.lesion_classes, s.recipe.connectivity)
        self._set(self.preview, mesh)
        if hidden != self.hidden:
            self.hidden = hidden
            self._show_lesions()

    def on_cursor(self, *_) -> None:
        """Put the cross on the main viewer's slice point (world mm)."""
        viewer = self._viewer()
        if viewer is None or self._grid is None:
            return
        point = np.asarray(viewer.dims.point, float)
        if point.size < 3:
            return
        self.cursor.data = _cross(point[-3:])
        self.cursor.visible = True

    def _set(self, layer, mesh) -> None:
        """Give a surface layer a mesh (hide it when there is none)."""
        if mesh is None:
            layer.visible = False
            return
        verts, faces = mesh
        if self._wind_back:
            faces = faces[:, ::-1]
        layer.data = (verts, faces, np.ones(len(verts), np.float32))
        layer.visible = True


def _cross(point: np.ndarray, half: float = CURSOR_MM / 2) -> np.ndarray:
    """Three short lines through ``point`` along the world axes, as napari vectors."""
    vectors = np.zeros((3, 2, 3))
    for a in range(3):
        vectors[a, 0] = point
        vectors[a, 0, a] -= half
        vectors[a, 1, a] = 2 * half
    return vectors


def _rgba(colour: str) -> np.ndarray:
    from napari.utils.colormaps.standardize_color import transform_color

    return transform_color(colour)[0]
