"""The Likelihood dock: build from the case and from a folder (worker), overlay, files."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import add_case, synthetic_case, wait_done

from napari_lesionmix._layers import ROLE_KEY
from napari_lesionmix._widgets._state import get_state
from napari_lesionmix._widgets.case_dock import CaseDock
from napari_lesionmix._widgets.likelihood_dock import LikelihoodDock
from napari_lesionmix.core.image_io import write_image
from napari_lesionmix.core.likelihood import LikelihoodMap

SPACING = (0.8, 0.8, 2.0)
ORIGIN = (-20.0, 4.0, 6.0)


def _viewer(make_napari_viewer):
    case = synthetic_case(spacing=SPACING, origin=ORIGIN)
    viewer = make_napari_viewer()
    add_case(viewer, case)
    case_dock = CaseDock(viewer)
    return viewer, LikelihoodDock(viewer), get_state(viewer), case, case_dock


def test_map_from_a_folder_of_masks_is_shown_as_overlay(make_napari_viewer, tmp_path, qtbot):
    viewer, dock, st, case, case_dock = _viewer(make_napari_viewer)
    folder = tmp_path / "labelsTr"
    folder.mkdir()
    centres = [((12, 10, 10),), ((12, 12, 10),), ((14, 10, 12),)]
    union = np.zeros(case.spatial_shape, bool)
    for i, c in enumerate(centres):
        lab = synthetic_case(centres=c).labels
        union |= lab > 0
        write_image(lab, case.geometry, folder / f"case{i}.nii.gz")
    (folder / "readme.txt").write_text("not an image")
    dock.sigma.setValue(0.0)
    dock.floor.setValue(0.0)
    worker = dock.build_from_folder(folder)
    assert worker is not None
    wait_done(qtbot, dock)
    lmap = st.likelihood
    assert lmap is not None and lmap.prob.shape == case.spatial_shape
    assert lmap.prob[12, 10, 10] == 1.0  # inside all three masks
    assert np.isclose(lmap.prob[14, 10, 15], 1 / 3)  # inside one
    assert lmap.prob[20, 40, 40] == 0.0
    # numbers written plainly (no "np.float64(2.0)")
    assert dock.info.text() == (f"map (24, 48, 48), {int((lmap.prob > 0).sum())} voxels > 0; "
                                "spacing (2, 0.8, 0.8) mm")
    layer = dock.overlay()
    assert layer is not None and layer.metadata[ROLE_KEY] == "likelihood"
    assert layer.colormap.name == "inferno" and layer.blending == "additive"
    assert np.allclose(layer.scale, case.geometry.napari_scale())
    assert np.allclose(layer.translate, case.geometry.napari_translate())
    assert layer not in case_dock.images._layers  # helper layers are not offered
    assert len(case_dock.images._layers) == 1
    dock.opacity.setValue(25)
    assert layer.opacity == 0.25
    # smoothing and floor come from the recipe
    dock.sigma.setValue(2.0)
    dock.floor.setValue(0.05)
    assert st.recipe.likelihood.sigma_mm == 2.0 and st.recipe.likelihood.floor == 0.05
    dock.build_from_folder(folder)
    wait_done(qtbot, dock)
    assert st.likelihood is not lmap
    # label files alone have no foreground: the floor's 5 % share covers the whole grid
    prob = st.likelihood.prob.astype(np.float64)
    assert prob.min() * prob.size / prob.sum() == pytest.approx(0.05, rel=1e-4)
    assert st.likelihood.prob[union].max() > 0.5
    assert len([lay for lay in viewer.layers if lay.metadata.get(ROLE_KEY)]) == 1


def test_map_from_the_case_save_and_load(make_napari_viewer, tmp_path, qtbot):
    viewer, dock, st, case, _ = _viewer(make_napari_viewer)
    dock.build_from_case()
    wait_done(qtbot, dock)
    lmap = st.likelihood
    expected = LikelihoodMap.from_recipe([case], st.recipe)
    assert np.array_equal(lmap.prob, expected.prob)
    assert dock.save_map(tmp_path / "map")
    saved = tmp_path / "map.nii.gz"
    assert saved.exists()
    st.set_likelihood(None)
    assert dock.overlay() is None
    assert dock.load_map(saved)
    assert np.array_equal(st.likelihood.prob, lmap.prob)
    assert st.likelihood.geometry.matches(case.geometry)
    assert dock.overlay() is not None


def test_errors_become_notifications(make_napari_viewer, tmp_path, qtbot, notes):
    viewer, dock, st, case, _ = _viewer(make_napari_viewer)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert dock.build_from_folder(empty) is None
    assert "holds no" in notes[-1][1]
    (empty / "bad.nii.gz").write_bytes(b"not a nifti")
    dock.build_from_folder(empty)
    wait_done(qtbot, dock)
    assert notes[-1][0] == "error" and "bad.nii.gz" in notes[-1][1]
    assert st.likelihood is None
    assert not dock.load_map(tmp_path / "missing.nii.gz")
    assert "missing.nii.gz" in notes[-1][1]
