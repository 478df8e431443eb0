"""Triangle surfaces of lesions, of a preview and of the allowed region, for the 3D pane.

ITK-SNAP and 3D Slicer show a segmentation in 3D as surface meshes, not by ray casting
its volume: a mesh of a few thousand triangles draws in milliseconds even on a software
OpenGL, where one frame of a 1 mm label volume costs about a second. Each surface here
is made on a small box (a lesion's own box, the preview's box), so a preview costs a
patch, never a volume; only the outline of the allowed region (the brain, the organ)
reads the whole volume, once per case, at a coarser step.

Vertices are array indices of the case (z, y, x): the case's geometry (as the layer's
``scale`` and ``affine``) puts them in physical mm. No napari, no Qt.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..core.lesions import Lesion, lesion_mask

__all__ = ["Mesh", "join", "lesion_surfaces", "mask_surface", "outline_surface",
           "preview_surface"]

#: (vertices (N, 3) float32, faces (M, 3) int32)
Mesh = tuple

#: a lesion's mask is smoothed this much (voxels) before its iso-surface is taken, so
#: that it reads as a lesion rather than a heap of cubes (ITK-SNAP smooths its meshes too)
SMOOTH = 0.6


def mask_surface(mask: np.ndarray, offset=(0, 0, 0), sigma: float = SMOOTH,
                 step: int = 1) -> Mesh | None:
    """The iso-surface of a binary mask (lightly smoothed), or None when it is empty.

    Parameters
    ----------
    mask : ndarray of bool, 3D
    offset : 3 ints
        Where ``mask[0, 0, 0]`` is in the case (the vertices are case indices).
    sigma : float
        Gaussian smoothing (voxels) before the surface is taken; 0 for none.
    step : int
        Marching-cubes step (2 = coarser, 8 times fewer cells).

    Examples
    --------
    >>> ball = np.linalg.norm(np.indices((9, 9, 9)) - 4, axis=0) <= 3
    >>> verts, faces = mask_surface(ball, offset=(10, 0, 0))
    >>> bool(abs(verts[:, 0].mean() - 14) < 0.1), faces.shape[1]
    (True, 3)
    """
    from skimage.measure import marching_cubes

    if mask.ndim != 3 or not mask.any():
        return None
    values = np.pad(mask.astype(np.float32), 1)
    if sigma > 0:
        values = ndi.gaussian_filter(values, sigma)
    top = float(values.max())
    level = 0.5 if top > 0.6 else top / 2  # a voxel or two keep a (small) surface
    verts, faces, _, _ = marching_cubes(values, level, step_size=step,
                                        allow_degenerate=False)
    if not len(faces):
        return None
    verts += np.asarray(offset, np.float32) - 1
    return verts.astype(np.float32), faces.astype(np.int32)


def join(meshes) -> Mesh | None:
    """One mesh of several (None entries left out); None when there is none."""
    meshes = [m for m in meshes if m is not None]
    if not meshes:
        return None
    verts, faces, n = [], [], 0
    for v, f in meshes:
        verts.append(v)
        faces.append(f + n)
        n += len(v)
    return np.concatenate(verts), np.concatenate(faces)


def lesion_surfaces(labels: np.ndarray, lesions: list[Lesion],
                    connectivity: str = "full") -> list:
    """One mesh per lesion (None for one too small to have a surface), each made on
    its own box.

    Examples
    --------
    >>> from napari_lesionmix.core.lesions import find_lesions
    >>> lab = np.zeros((20, 20, 20), np.uint8); lab[2:6, 2:6, 2:6] = 1; lab[10:15, 9:14, 9:14] = 2
    >>> [len(faces) > 0 for verts, faces in lesion_surfaces(lab, find_lesions(lab, [1, 2]))]
    [True, True]
    """
    meshes = []
    for lesion in lesions:
        mask, box = lesion_mask(labels, lesion, connectivity, pad=1)
        meshes.append(mask_surface(mask, [s.start for s in box]))
    return meshes


def _intersects(a: tuple, b: tuple) -> bool:
    return all(x.start < y.stop and y.start < x.stop for x, y in zip(a, b))


def _union(boxes) -> tuple:
    boxes = list(boxes)
    return tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes))
                 for a in range(len(boxes[0])))


def _local(inner: tuple, outer: tuple) -> tuple:
    return tuple(slice(i.start - o.start, i.stop - o.start) for i, o in zip(inner, outer))


def preview_surface(labels: np.ndarray, edit, lesions: list[Lesion], classes,
                    connectivity: str = "full") -> tuple[Mesh | None, list[int]]:
    """What a preview changes, as a surface: the lesion voxels of the edited case that
    are new or belong to a lesion the edit touches; and the lesions the edit touches,
    which the preview replaces (hide them while it is shown).

    Only the edit's box is read, grown to the boxes of the lesions it touches.

    Parameters
    ----------
    labels : ndarray
        The case's labels (without the preview).
    edit : Edit
        The preview: new labels for ``edit.slices``.
    lesions : list of Lesion
        The case's lesions.
    classes : iterable of int
        The lesion classes.

    Returns
    -------
    (mesh or None, list of int)
        The surface (case indices) and the indices of the replaced lesions.
    """
    box = tuple(edit.slices)
    classes = np.asarray(sorted(int(c) for c in classes), labels.dtype)
    changed = labels[box] != edit.labels
    near = [k for k, les in enumerate(lesions) if _intersects(les.bbox, box)]
    masks = {k: lesion_mask(labels, lesions[k], connectivity) for k in near}
    touched = []
    for k in near:
        mask, lbox = masks[k]
        inter = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(lbox, box))
        if (mask[_local(inter, lbox)] & changed[_local(inter, box)]).any():
            touched.append(k)
    region = _union([box] + [masks[k][1] for k in touched])
    after = labels[region].copy()
    after[_local(box, region)] = edit.labels
    shown = np.isin(after, classes)
    for k, les in enumerate(lesions):  # lesions the edit leaves alone keep their own surface
        if k in touched or not _intersects(les.bbox, region):
            continue
        mask, lbox = masks[k] if k in masks else lesion_mask(labels, les, connectivity)
        inter = tuple(slice(max(a.start, b.start), min(a.stop, b.stop))
                      for a, b in zip(lbox, region))
        shown[_local(inter, region)] &= ~mask[_local(inter, lbox)]
    return mask_surface(shown, [s.start for s in region]), touched


#: the outline's budget of triangles: it is translucent glass drawn in every frame of the
#: pane, and on a software OpenGL a frame costs about 1 ms per 1000 triangles (66 000, the
#: 1 mm brain taken every 2 voxels, made a frame 90 ms; 10 000 make it 27 ms)
OUTLINE_FACES = 12_000


def outline_surface(allowed: np.ndarray, step: int | None = None,
                    max_faces: int = OUTLINE_FACES) -> Mesh | None:
    """The outline of the allowed region (the brain, the organ): the surface of the mask
    taken every ``step`` voxels after smoothing, in case indices. Without ``step`` the
    finest step (from 2) that gives at most ``max_faces`` triangles.

    Examples
    --------
    >>> ball = np.linalg.norm(np.indices((30, 30, 30)) - 15, axis=0) <= 12
    >>> verts, faces = outline_surface(ball, step=2)
    >>> bool(np.allclose(verts.mean(axis=0), 15, atol=0.6))
    True
    >>> len(outline_surface(ball, max_faces=500)[1]) <= 500
    True
    """
    if allowed.ndim != 3 or not allowed.any():
        return None
    steps = [step] if step is not None else range(max(2, -(-max(allowed.shape) // 64)),
                                                   max(allowed.shape) // 4 + 2)
    mesh = None
    for k in steps:
        small = allowed[::k, ::k, ::k]
        mesh = mask_surface(small, sigma=1.0)
        if mesh is None:
            return None
        if len(mesh[1]) <= max_faces:
            break
    verts, faces = mesh
    return verts * k, faces
