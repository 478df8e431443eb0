"""Fixtures of the review tests: an export made by ``lesionmix generate`` on the bundled
brain sample (6 sources, 6 synthesised cases), built once and copied where a test
changes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.review.review_helpers import generate


@pytest.fixture(scope="session")
def export_ro(tmp_path_factory) -> Path:
    """An export of the brain sample; tests must not change it (use ``export``)."""
    return generate(tmp_path_factory.mktemp("review") / "Dataset900_Brain")


@pytest.fixture
def export(export_ro, tmp_path) -> Path:
    """A fresh copy of the export, for tests that change it."""
    return Path(shutil.copytree(export_ro, tmp_path / export_ro.name))


@pytest.fixture
def dock(make_napari_viewer, qtbot, export):
    """The Review dock in a shown viewer, reviewer "alice" typed, ``export`` opened by
    typing its dataset.json and pressing Enter."""
    from qtpy.QtCore import Qt

    from napari_lesionmix._widgets.review_dock import ReviewDock

    viewer = make_napari_viewer(show=True)
    d = ReviewDock(viewer)
    viewer.window.add_dock_widget(d, name="Review", area="right")
    d.reviewer.clear()
    qtbot.keyClicks(d.reviewer, "alice")
    qtbot.keyClicks(d.path, str(export / "dataset.json"))
    qtbot.keyClick(d.path, Qt.Key.Key_Return)
    return d
