"""The edit session without a display: the case, the preview, the history, the signals."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_lesionmix.core.likelihood import LikelihoodMap
from napari_lesionmix.core.recipe import Recipe
from napari_lesionmix.core.transforms import LesionParams
from napari_lesionmix.session.augment import preview_add, preview_remove, sample_location
from napari_lesionmix.session.errors import SessionError
from napari_lesionmix.session.session import EditSession
from tests.conftest import blob_case


def _free_voxel(session: EditSession) -> tuple:
    """A foreground voxel at least 6 voxels from every lesion, where the tissue is like
    the selected lesion's surroundings (the image ramps along x: the closest x), so the
    engine's placement checks accept it."""
    from scipy import ndimage as ndi

    case = session.case
    far = ndi.distance_transform_edt(case.labels == 0) > 6
    inside = ndi.binary_erosion(case.channels[0] > 0, iterations=4)
    candidates = np.argwhere(far & inside)
    x = session.lesions[session.selected].centroid[-1]
    best = candidates[np.abs(candidates[:, -1] - x) <= 1]
    return tuple(int(v) for v in best[len(best) // 2])


@pytest.fixture
def session() -> EditSession:
    s = EditSession()
    s.set_case(blob_case(shape=(24, 32, 32), n_lesions=3, seed=1))
    s.select(0)
    return s


def _record(signal) -> list:
    seen: list = []
    signal.connect(lambda *args: seen.append(args))
    return seen


def test_a_preview_never_touches_the_case(session):
    channels0, labels0 = session.case.channels.copy(), session.case.labels.copy()
    session.set_location(_free_voxel(session))
    reason = preview_add(session, LesionParams.identity(3))
    assert reason == "" and session.has_preview and session.preview_kind == "add"
    np.testing.assert_array_equal(session.case.channels, channels0)
    np.testing.assert_array_equal(session.case.labels, labels0)
    edit = session.preview
    assert (edit.labels != labels0[edit.slices]).any()  # the preview itself is a change
    preview_remove(session, noise_seed=3)
    assert session.preview_kind == "remove"
    np.testing.assert_array_equal(session.case.labels, labels0)
    assert len(session.lesions) == 3


def test_apply_undo_reset_are_bit_exact(session):
    channels0, labels0 = session.case.channels.copy(), session.case.labels.copy()
    session.set_location(_free_voxel(session))
    preview_add(session, LesionParams.identity(3))
    changed = _record(session.data_changed)
    change = session.apply()
    assert change is not None and change.kind == "add" and not session.has_preview
    assert len(session.lesions) == 4 and len(session.bank) == 4
    assert session.location is None  # the next lesion does not land on this one
    assert changed and changed[-1][2] is False
    labels1 = session.case.labels.copy()
    session.select(1)
    preview_remove(session, 7)
    session.apply()
    assert len(session.lesions) == 3 and len(session.undo_stack) == 2
    assert session.undo()
    np.testing.assert_array_equal(session.case.labels, labels1)
    assert changed[-1][2] is True
    assert session.reset() == 1
    np.testing.assert_array_equal(session.case.channels, channels0)
    np.testing.assert_array_equal(session.case.labels, labels0)
    assert not session.undo() and session.reset() == 0


def test_views_keep_their_attachments_on_the_change(session):
    seen = {}

    def before(slices, change):
        change.extra["box"] = session.case.labels[slices].copy()

    def after(slices, change, undone):
        seen[undone] = change.extra["box"]

    session.before_change.connect(before)
    session.data_changed.connect(after)
    session.set_location(_free_voxel(session))
    preview_add(session, LesionParams.identity(3))
    box_before = session.case.labels[session.preview.slices].copy()
    session.apply()
    session.undo()
    np.testing.assert_array_equal(seen[True], box_before)  # what undo restores exactly


def test_a_refused_location_says_why(session):
    other = session.lesions[1]
    session.set_location(np.round(other.centroid))
    assert "touches an existing lesion" in preview_add(session, LesionParams.identity(3))
    with pytest.raises(SessionError, match="outside the case"):
        session.set_location((99, 0, 0))
    session.set_location(None)
    with pytest.raises(SessionError, match="no location"):
        preview_add(session, LesionParams.identity(3))
    assert not session.has_preview


def test_sample_location_is_one_the_engine_accepts(session):
    prob = np.zeros(session.case.spatial_shape, np.float32)
    free = _free_voxel(session)
    box = tuple(slice(c - 2, c + 3) for c in free)
    prob[box] = 1.0
    session.set_likelihood(LikelihoodMap(prob, session.case.geometry))
    focus = _record(session.focus_requested)
    loc, reason = sample_location(session, LesionParams.identity(3),
                                  np.random.default_rng(0))
    assert reason == "" and loc == session.location and prob[loc] == 1.0
    assert focus[-1] == (tuple(float(v) for v in loc),)  # the views go there
    assert preview_add(session, LesionParams.identity(3)) == ""
    # a map that is non-zero only where lesions already are: nowhere to go
    on_lesions = (session.case.labels > 0).astype(np.float32)
    session.set_likelihood(LikelihoodMap(on_lesions, session.case.geometry))
    loc, reason = sample_location(session, LesionParams.identity(3),
                                  np.random.default_rng(0))
    assert loc is None and "zero everywhere" in reason


def test_selection_steps_and_clicks(session):
    focus = _record(session.focus_requested)
    assert session.select_step(1) == 1 and session.select_step(1) == 2
    assert session.select_step(1) == 0  # wraps
    assert session.select_step(-1) == 2
    assert focus[-1] == (tuple(session.lesions[2].centroid),)
    target = session.lesions[1]
    session.click(np.round(target.centroid))
    assert session.selected == 1
    session.click((0, 0, 0))  # background: nothing
    assert session.selected == 1
    session.set_click_mode("location")
    session.click((5, 6, 7))
    assert session.location == (5, 6, 7) and session.selected == 1
    with pytest.raises(SessionError):
        session.select(17)


def test_recipe_edits_are_checked_and_structural_ones_refresh_the_lesions():
    s = EditSession()
    s.set_case(blob_case(n_lesions=3, organ=True))  # organ 1, lesions 2
    assert len(s.lesions) == 4  # the organ counts while no class is chosen
    s.update_recipe(lesion_classes=[2], organ_label=1)
    assert len(s.lesions) == 3 and s.recipe_origin == "edited"
    with pytest.raises(SessionError, match="populate.scale"):
        s.update_recipe("populate", scale=[2.0, 1.0])
    assert s.recipe.populate.scale == (0.5, 1.8)
    assert s.context.allowed.sum() == (s.case.labels == 1).sum()


def _recipe_file(tmp_path, name, **fields) -> str:
    path = tmp_path / name / "lesionmix_recipe.json"
    path.parent.mkdir()
    path.write_text(json.dumps(Recipe(**fields).to_dict()))
    return str(path)


def test_a_new_dataset_brings_its_recipe_unless_it_was_edited(tmp_path):
    liver = _recipe_file(tmp_path, "liver", lesion_classes=[2], organ_label=1)
    brain = _recipe_file(tmp_path, "brain", lesion_classes=[1], likelihood={"sigma_mm": 4})
    s = EditSession()
    asked = _record(s.recipe_question)
    s.set_case(blob_case(), dataset_recipe=brain)
    assert s.recipe.likelihood.sigma_mm == 4 and s.recipe_origin == "dataset"
    s.set_case(blob_case(organ=True), dataset_recipe=liver)  # switching datasets
    assert s.recipe.organ_label == 1 and s.recipe.lesion_classes == [2]
    assert len(s.lesions) == 3  # tumours, not the whole liver
    s.set_case(blob_case(), dataset_recipe=None)  # a dataset without a recipe
    assert s.recipe == Recipe() and s.recipe_origin == "default"
    s.set_case(blob_case(), dataset_recipe=brain)
    s.update_recipe(tolerance=0.2)  # by hand
    s.set_case(blob_case(organ=True), dataset_recipe=liver)
    assert asked == [(liver,)] and s.recipe.tolerance == 0.2  # asked, nothing replaced
    s.set_case(blob_case(organ=True), dataset_recipe=liver)  # the same data again
    assert asked == [(liver,)]
    s.adopt_dataset_recipe(liver)  # the user said yes
    assert s.recipe.organ_label == 1 and s.recipe_origin == "dataset"
    broken = tmp_path / "bad.json"
    broken.write_text("{")
    said = _record(s.message)
    assert not s.adopt_dataset_recipe(str(broken))
    assert said and said[-1][0] == "warning" and "bad.json" in said[-1][1]


def test_forgetting_the_case_says_why(session):
    session.forget_case("the label layer was removed")
    assert session.case is None and session.lesions == [] and session.undo_stack == []
    assert "label layer was removed" in session.why_idle()
    assert EditSession().why_idle().startswith("No case yet")


def test_the_session_imports_neither_napari_nor_qt():
    code = ("import sys, napari_lesionmix.session; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
